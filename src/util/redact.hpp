// SPDX-License-Identifier: MIT
// Redaction of secrets from command lines before rlock records, prints or logs them.
#pragma once

#include <string>
#include <string_view>

namespace rlock {

// The command line `line` (words as shell_join writes them, quoted or not) with every secret it
// may carry replaced by "***":
//  - URL userinfo, for any scheme: scheme://user:SECRET@host keeps the user, scheme://SECRET@host
//    (a bare password for redis-cli, a token for https) loses it whole; query values named like
//    a secret (unix:///s.sock?password=SECRET);
//  - the value of an option named like a secret, given as `--password SECRET`, `--pass SECRET`,
//    `--password=SECRET`, `--tls-key-passphrase SECRET`, `--token SECRET`, ... (not `--*-file`,
//    which names a file), of `-a SECRET` (redis-cli), and the password in `-u/--user USER:SECRET`;
//  - assignments named like a secret: `REDISCLI_AUTH=SECRET`, `RLOCK_PASSWORD=SECRET`,
//    `-Dssl.keyStorePassword=SECRET`, `GITHUB_TOKEN=SECRET`;
//  - an `Authorization: …` header value;
//  - the same inside a word that is itself a command line (`sh -c 'redis-cli -a SECRET ping'`).
// "Named like a secret": the name holds password, passwd, passphrase, secret, token, credential
// or api-key, is or ends in pass or auth, and does not end in -file, -path, -dir, -stdin, ...
// Redacting twice changes nothing more. Errs on the side of hiding too much.
std::string redact_command_line(std::string_view line);

} // namespace rlock
