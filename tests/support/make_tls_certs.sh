#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes the certificates of the TLS tests in DIR (P-256 keys, well under a second):
#   ca            the test CA; server (DNS:localhost, IP:127.0.0.1) and client signed by it
#   other         a server certificate naming other.example only
#   sni           a server certificate naming redis.test only
#   foreign-ca    another CA; foreign-server and foreign-client signed by it
#   inter         an intermediate CA under ca; chain.crt = chain-leaf (localhost) + inter
#   expired       a localhost certificate by ca that expired in 2020
#   client-encrypted.key   client.key under the passphrase "secret"
set -euo pipefail
dir=${1:?usage: make_tls_certs.sh DIR}
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
new_ca() {
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 30 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
# sign NAME CA SUBJECT EXTENSIONS
sign() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$3" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
}
server_ext() { printf 'basicConstraints=CA:false\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' "$1"; }
client_ext=$(printf 'basicConstraints=CA:false\nextendedKeyUsage=clientAuth\n')
ca_ext=$(printf 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n')

new_ca ca "rlock test CA"
sign server ca /CN=localhost "$(server_ext DNS:localhost,IP:127.0.0.1)"
sign other ca /CN=other.example "$(server_ext DNS:other.example)"
sign sni ca /CN=redis.test "$(server_ext DNS:redis.test)"
sign client ca /CN=rlock-test-client "$client_ext"
new_ca foreign-ca "some other CA"
sign foreign-server foreign-ca /CN=localhost "$(server_ext DNS:localhost,IP:127.0.0.1)"
sign foreign-client foreign-ca /CN=rlock-test-client "$client_ext"
sign inter ca "/CN=rlock test intermediate CA" "$ca_ext"
sign chain-leaf inter /CN=localhost "$(server_ext DNS:localhost,IP:127.0.0.1)"
cat chain-leaf.crt inter.crt >chain.crt
openssl pkey -in client.key -aes256 -passout pass:secret -out client-encrypted.key

# An expired certificate needs explicit dates, which only `openssl ca` takes.
key expired.key
openssl req -new -key expired.key -subj /CN=localhost -out expired.csr 2>/dev/null
server_ext DNS:localhost,IP:127.0.0.1 >expired.ext
: >index.txt
echo 01 >serial
cat >ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
[any]
commonName = supplied
CNF
openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr -out expired.crt \
  -startdate 20200101000000Z -enddate 20200201000000Z -extfile expired.ext -notext 2>/dev/null
chmod 600 ./*.key
