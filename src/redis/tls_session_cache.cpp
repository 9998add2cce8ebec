// SPDX-License-Identifier: MIT
// The TLS session cache: files in $XDG_RUNTIME_DIR/rlock, one per key, each holding its key,
// the session (DER, without the server's certificate) and a SHA-256 of both.
//
// Why a cache at all: rlock is a process per lock, so every run pays a full handshake, the
// certificate decoding and verification included; a resumed TLS 1.3 handshake skips them
// (docs/performance.md, TLS).
//
// Why the care: a stored session is a credential (its resumption secret stands in for the
// verification that was done, and with a client certificate for the client's identity), and
// OpenSSL checks neither chain nor name when it resumes. So a session is offered only to the
// exact key it was verified for, the key is stored in the file and compared, and the place is
// private: a directory of our own, mode 0700, opened without following a symbolic link and
// checked after opening, files 0600 written under a temporary name and renamed, all relative
// to the directory's descriptor. Anything else (no XDG_RUNTIME_DIR, a directory of another
// user or with group/other bits, a symbolic link) means no cache, never a shared fallback.
// A file that does not parse, fails its checksum, names another key, has expired, or is not
// 0600 and ours, is ignored; the full handshake that follows replaces it.
#include "redis/tls_session_cache.hpp"

#include "redis/tls.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <memory>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace rlock::redis {

namespace {

constexpr std::string_view k_magic = "rlock-tls-session 2\n";
// How long a session, refreshed or not, may stand in for the full handshake that verified the
// server: each refresh brings a new ticket, and without a bound a steady stream of runs would
// never verify again, whatever became of the certificate or the CAs trusted meanwhile (RFC
// 8446, 4.6.1: limit the total lifetime of keying material from one full handshake).
constexpr long k_max_verified_age = 3600;
constexpr std::size_t k_max_file_size = std::size_t{16} * 1024;
constexpr std::size_t k_digest_size = 32;

using Digest = std::array<unsigned char, k_digest_size>;

Digest sha256(std::string_view data) {
  Digest digest{};
  unsigned int size = 0;
  ::EVP_Digest(data.data(), data.size(), digest.data(), &size, ::EVP_sha256(), nullptr);
  return digest;
}

std::string hex(const Digest& digest) {
  std::string out;
  for (unsigned char byte : digest) out += fmt::format("{:02x}", byte);
  return out;
}

// The cache directory, opened once per process; an invalid Fd when there is no safe one.
struct CacheDir {
  Fd fd;
  std::string path;
};

const CacheDir& cache_dir() {
  static const CacheDir dir = [] {
    CacheDir made;
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    if (runtime == nullptr || runtime[0] != '/') {
      log::verbose("no TLS session cache: XDG_RUNTIME_DIR is not set to an absolute path");
      return made;
    }
    made.path = std::string(runtime) + "/rlock";
    Fd parent(::open(runtime, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent) {
      log::verbose("no TLS session cache: cannot open {}: {}", runtime, std::strerror(errno));
      return made;
    }
    if (::mkdirat(parent.get(), "rlock", 0700) != 0 && errno != EEXIST) {
      log::verbose("no TLS session cache: cannot create {}: {}", made.path, std::strerror(errno));
      return made;
    }
    Fd fd(::openat(parent.get(), "rlock", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      const int err = errno;
      log::verbose("no TLS session cache: cannot open {}: {}", made.path,
                   err == ELOOP || err == ENOTDIR ? "a symbolic link or not a directory" : std::strerror(err));
      return made;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      log::verbose("no TLS session cache: {} is not a directory", made.path);
      return made;
    }
    if (st.st_uid != ::geteuid()) {
      log::verbose("no TLS session cache: {} belongs to uid {}, not to uid {}", made.path, st.st_uid, ::geteuid());
      return made;
    }
    if ((st.st_mode & 077) != 0) {
      log::verbose("no TLS session cache: {} has mode {:04o}, open to group or others (it must be 0700)", made.path,
                   st.st_mode & 07777);
      return made;
    }
    made.fd = std::move(fd);
    return made;
  }();
  return dir;
}

std::string file_name(const std::string& key) { return hex(sha256(key)) + ".session"; }

// One file's identity for the key: "PATH inode size mtime", or "PATH -" when it cannot be
// stat'ed (make_context has refused an unreadable file already).
std::string file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + " -";
  return fmt::format("{} {}:{} {} {}.{:09}", path, st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec);
}

// A CA directory's identity: its own, and each entry's (followed when a link), sorted: a CA
// file rewritten in place changes neither the directory nor the hash link that leads to it.
// For --cacertdir only: a system store directory holds hundreds of entries, and its tools
// (update-ca-certificates, c_rehash) replace the links, which changes the directory.
std::string directory_identity(const std::string& path) {
  std::string identity = file_identity(path);
  struct DirClose {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
  };
  std::unique_ptr<DIR, DirClose> dir(::opendir(path.c_str()));
  if (!dir) return identity;
  std::vector<std::string> entries;
  while (const dirent* entry = ::readdir(dir.get())) {
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    entries.push_back(file_identity(path + "/" + std::string(name)));
  }
  std::sort(entries.begin(), entries.end());
  for (const auto& entry : entries) identity += " | " + entry;
  return identity;
}

// A DER header at `at`: its tag and the length of its contents, `at` moved past it. False for
// a malformed one, a high tag number or contents that overrun `der`.
bool der_header(std::string_view der, std::size_t& at, unsigned char& tag, std::size_t& length) {
  if (at + 2 > der.size()) return false;
  tag = static_cast<unsigned char>(der[at++]);
  if ((tag & 0x1f) == 0x1f) return false;
  const auto first = static_cast<unsigned char>(der[at++]);
  if (first < 0x80) {
    length = first;
  } else {
    const std::size_t count = first & 0x7fU;
    if (count == 0 || count > 4 || at + count > der.size()) return false;
    length = 0;
    for (std::size_t i = 0; i < count; ++i) length = (length << 8) | static_cast<unsigned char>(der[at++]);
  }
  return length <= der.size() - at;
}

std::string der_length(std::size_t length) {
  if (length < 0x80) return std::string(1, static_cast<char>(length));
  std::string bytes;
  for (std::size_t rest = length; rest != 0; rest >>= 8) bytes.insert(bytes.begin(), static_cast<char>(rest & 0xff));
  return std::string(1, static_cast<char>(0x80 | bytes.size())) + bytes;
}

// The session's DER without its [3] element, the server's certificate (SSL_SESSION_ASN1 in
// OpenSSL's ssl_asn1.c); empty when `der` is not the SEQUENCE expected.
std::string without_peer_certificate(std::string_view der) {
  std::size_t at = 0;
  unsigned char tag = 0;
  std::size_t length = 0;
  if (!der_header(der, at, tag, length) || tag != 0x30 || at + length != der.size()) return {};
  std::string body;
  while (at < der.size()) {
    const std::size_t start = at;
    if (!der_header(der, at, tag, length)) return {};
    at += length;
    if (tag != 0xa3) body.append(der.substr(start, at - start));
  }
  return "\x30" + der_length(body.size()) + body;
}

SSL_SESSION* decode(std::string_view der) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(der.data());
  return ::d2i_SSL_SESSION(nullptr, &bytes, static_cast<long>(der.size()));
}

// The file's contents: the magic line, "KEY_SIZE DER_SIZE VERIFIED_AT\n", the key, the DER,
// and the SHA-256 of everything before it.
std::string encode_file(const std::string& key, std::string_view der, long verified_at) {
  std::string text = fmt::format("{}{} {} {}\n{}", k_magic, key.size(), der.size(), verified_at, key);
  text.append(der);
  const Digest digest = sha256(text);
  text.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return text;
}

// The DER of `text` when it is a whole, intact file for `key`; else empty, with `why` set.
std::string_view decode_file(std::string_view text, const std::string& key, long& verified_at, std::string& why) {
  if (text.size() < k_magic.size() + k_digest_size || !text.starts_with(k_magic)) {
    why = "not a session file";
    return {};
  }
  const std::string_view body = text.substr(0, text.size() - k_digest_size);
  const Digest digest = sha256(body);
  if (std::memcmp(digest.data(), text.data() + body.size(), k_digest_size) != 0) {
    why = "its checksum does not match (corrupted)";
    return {};
  }
  std::string_view rest = body.substr(k_magic.size());
  const std::size_t newline = rest.find('\n');
  std::size_t key_size = 0;
  std::size_t der_size = 0;
  // The sizes compared without adding them: a sum could wrap around.
  if (newline == std::string_view::npos ||
      std::sscanf(std::string(rest.substr(0, newline)).c_str(), "%zu %zu %ld", &key_size, &der_size, &verified_at) !=
          3 ||
      key_size > rest.size() - newline - 1 || der_size != rest.size() - newline - 1 - key_size) {
    why = "not a session file";
    return {};
  }
  rest.remove_prefix(newline + 1);
  if (rest.substr(0, key_size) != key) {
    why = "it was stored for another endpoint, name, verification or certificate files";
    return {};
  }
  return rest.substr(key_size);
}

} // namespace

std::string tls_session_key(const TlsSettings& settings, const std::string& peer, const std::string& name,
                            const std::string& files) {
  return fmt::format("endpoint {}\nname {}\nverify {}\n{}", peer, name, to_string(settings.verify), files);
}

std::string tls_session_files(const TlsSettings& settings, const std::string& system_trust) {
  std::string key;
  if (settings.verify != TlsVerify::none) {
    if (!settings.cacert.empty()) key += "cacert " + file_identity(settings.cacert) + "\n";
    if (!settings.cacertdir.empty()) key += "cacertdir " + directory_identity(settings.cacertdir) + "\n";
    if (settings.cacert.empty() && settings.cacertdir.empty()) {
      key += "trust " + (system_trust.empty() ? std::string("-") : file_identity(system_trust)) + "\n";
    }
  }
  if (!settings.cert.empty()) key += "cert " + file_identity(settings.cert) + "\n";
  if (!settings.key.empty()) key += "key " + file_identity(settings.key) + "\n";
  return key;
}

ssl_session_st* load_tls_session(const std::string& key, bool& refresh, long& verified_at) {
  refresh = false;
  verified_at = 0;
  const CacheDir& dir = cache_dir();
  if (!dir.fd) return nullptr;
  const std::string name = file_name(key);
  const std::string shown = dir.path + "/" + name;
  Fd fd(::openat(dir.fd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) {
      log::verbose("no cached TLS session in {}", shown);
    } else {
      log::verbose("ignoring the cached TLS session {}: {}", shown, std::strerror(errno));
    }
    return nullptr;
  }
  const auto ignore = [&shown](std::string_view why) -> ssl_session_st* {
    log::verbose("ignoring the cached TLS session {}: {}", shown, why);
    return nullptr;
  };
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return ignore("not a regular file");
  if (st.st_uid != ::geteuid()) return ignore(fmt::format("it belongs to uid {}", st.st_uid));
  if ((st.st_mode & 077) != 0) {
    return ignore(fmt::format("its mode {:04o} opens it to group or others", st.st_mode & 07777));
  }
  if (static_cast<std::size_t>(st.st_size) > k_max_file_size) return ignore("too large");
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ignore(std::strerror(errno));
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > k_max_file_size) return ignore("too large");
  }
  std::string why;
  const std::string_view der = decode_file(text, key, verified_at, why);
  if (der.empty()) return ignore(why);
  SSL_SESSION* session = decode(der);
  if (session == nullptr) return ignore("the session does not parse");
  if (::SSL_SESSION_get_protocol_version(session) != TLS1_3_VERSION || ::SSL_SESSION_is_resumable(session) != 1) {
    ::SSL_SESSION_free(session);
    return ignore("not a resumable TLS 1.3 session");
  }
  const long now = static_cast<long>(std::time(nullptr));
  const long created = ::SSL_SESSION_get_time(session);
  // OpenSSL 3.0 leaves a client session's timeout at its default (7200 s) and keeps the
  // server's word on the ticket's lifetime apart.
  long lifetime = ::SSL_SESSION_get_timeout(session);
  const unsigned long hint = ::SSL_SESSION_get_ticket_lifetime_hint(session);
  if (hint > 0 && hint < static_cast<unsigned long>(lifetime)) lifetime = static_cast<long>(hint);
  if (now >= created + lifetime || created > now + 60) {
    ::SSL_SESSION_free(session);
    return ignore(fmt::format("it has expired (created {} s ago, valid for {} s)", now - created, lifetime));
  }
  if (now - verified_at > k_max_verified_age || verified_at > now + 60) {
    ::SSL_SESSION_free(session);
    return ignore(fmt::format("the server was verified {} s ago, more than the {} s a session may stand in for that",
                              now - verified_at, k_max_verified_age));
  }
  refresh = now - created > lifetime / 2;
  return session;
}

void store_tls_session(const std::string& key, ssl_session_st* session, long verified_at) {
  const CacheDir& dir = cache_dir();
  if (!dir.fd) return;
  const std::string name = file_name(key);
  const int size = ::i2d_SSL_SESSION(session, nullptr);
  if (size <= 0) return;
  std::string der(static_cast<std::size_t>(size), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (::i2d_SSL_SESSION(session, &out) != size) return;
  const std::string stripped = without_peer_certificate(der);
  SSL_SESSION* check = stripped.empty() ? nullptr : decode(stripped);
  if (check == nullptr) {
    log::verbose("not caching the TLS session: its encoding is not the one expected");
    return;
  }
  ::SSL_SESSION_free(check);
  const std::string text = encode_file(key, stripped, verified_at);
  const std::string temporary = fmt::format(".{}.{}.tmp", name, ::getpid());
  ::unlinkat(dir.fd.get(), temporary.c_str(), 0); // left by a crashed run with our pid
  Fd fd(::openat(dir.fd.get(), temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    log::verbose("cannot cache the TLS session in {}: {}", dir.path, std::strerror(errno));
    return;
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    const ssize_t n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log::verbose("cannot cache the TLS session in {}: {}", dir.path, std::strerror(errno));
      ::unlinkat(dir.fd.get(), temporary.c_str(), 0);
      return;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  fd = Fd();
  if (::renameat(dir.fd.get(), temporary.c_str(), dir.fd.get(), name.c_str()) != 0) {
    log::verbose("cannot cache the TLS session in {}: {}", dir.path, std::strerror(errno));
    ::unlinkat(dir.fd.get(), temporary.c_str(), 0);
    return;
  }
  log::verbose("cached the TLS session in {}/{}", dir.path, name);
}

void forget_tls_session(const std::string& key) {
  const CacheDir& dir = cache_dir();
  if (dir.fd) ::unlinkat(dir.fd.get(), file_name(key).c_str(), 0);
}

} // namespace rlock::redis
