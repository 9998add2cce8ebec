// SPDX-License-Identifier: MIT
// TLS on OpenSSL 3: one SSL_CTX per distinct settings for the life of the process, the
// system trust store found where the host keeps it, and every failure sorted into the exit
// code the user can act on (TLS in rlock(1)).
//
// Why the care with the trust store: rlock is a static binary, so OpenSSL's compiled-in
// directory is the build host's, which need not exist where rlock runs. A hashed directory
// is preferred over a bundle file because OpenSSL then reads only the CA files a chain
// needs, at verification time, instead of parsing a few hundred certificates on every run.
//
// Why the first bytes are recorded: a plaintext server that receives a ClientHello either
// answers something that is not TLS (a Redis protocol error) or waits for more; the first
// deserves "does not speak TLS" (78), the second "no TLS answer" (69), and only the bytes on
// the wire tell them apart from a TLS server that refused the handshake.
#include "redis/tls.hpp"

#include "redis/tls_session_cache.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <map>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef RLOCK_OPENSSL_LAZY_CPUID
// libcrypto's x86_64cpuid.o puts a call to OPENSSL_cpuid_setup in the .init section, so a
// binary with OpenSSL linked in statically probes the CPU's features (a dozen cpuid
// instructions, each an exit to the hypervisor in a VM, and 14 page faults) at every start,
// plaintext runs included. The link wraps the symbol (--wrap=OPENSSL_cpuid_setup, set with
// this macro in CMakeLists.txt): the call from .init lands here and does nothing until a TLS
// connection wants OpenSSL; then OpenSSL's own calls reach the real one, which runs once.
namespace {
bool g_openssl_wanted = false;
} // namespace
extern "C" void __real_OPENSSL_cpuid_setup();  // NOLINT(bugprone-reserved-identifier,readability-identifier-naming)
extern "C" void __wrap_OPENSSL_cpuid_setup() { // NOLINT(bugprone-reserved-identifier,readability-identifier-naming)
  if (g_openssl_wanted) __real_OPENSSL_cpuid_setup();
}
#endif

#ifdef RLOCK_OPENSSL_LAZY_STRINGS
// OpenSSL 3.0 loads the text of every error reason of libcrypto (35 libraries) when a thread
// first touches its error queue, and libssl's in SSL_CTX_new: 1.0 M instructions of a TLS run
// of 22 M, for text only a failure prints. The link wraps the two loaders
// (--wrap=ossl_err_load_crypto_strings, --wrap=ossl_err_load_SSL_strings): OpenSSL's own calls
// do nothing, and openssl_reason() loads both, in full, before it reads one, so every message
// is as before.
namespace {
bool g_strings_wanted = false;
} // namespace
extern "C" int
__real_ossl_err_load_crypto_strings(); // NOLINT(bugprone-reserved-identifier,readability-identifier-naming)
extern "C" int
__wrap_ossl_err_load_crypto_strings() { // NOLINT(bugprone-reserved-identifier,readability-identifier-naming)
  return g_strings_wanted ? __real_ossl_err_load_crypto_strings() : 1;
}
extern "C" int __real_ossl_err_load_SSL_strings(); // NOLINT(bugprone-reserved-identifier,readability-identifier-naming)
extern "C" int
__wrap_ossl_err_load_SSL_strings() { // NOLINT(bugprone-reserved-identifier,readability-identifier-naming)
  return g_strings_wanted ? __real_ossl_err_load_SSL_strings() : 1;
}
#endif

namespace rlock::redis {

std::string_view to_string(TlsVerify verify) noexcept {
  switch (verify) {
  case TlsVerify::full: return "full";
  case TlsVerify::ca: return "ca";
  case TlsVerify::none: return "none";
  }
  return "full";
}

bool is_ip_literal(const std::string& host) noexcept {
  unsigned char address[16];
  return ::inet_pton(AF_INET, host.c_str(), address) == 1 || ::inet_pton(AF_INET6, host.c_str(), address) == 1;
}

namespace {

// Bundle files and hashed directories of the distributions rlock's static binary may land
// on, after OpenSSL's own default (the build host's).
constexpr const char* k_bundle_files[] = {
    "/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Alpine, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL, CentOS
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // Fedora, RHEL (the extracted store)
    "/etc/ssl/ca-bundle.pem",                            // openSUSE, SLES
    "/etc/ca-certificates/extracted/tls-ca-bundle.pem",  // Arch
    "/etc/ssl/cert.pem",                                 // Alpine, Arch, macOS-like layouts
};
constexpr const char* k_hashed_dirs[] = {
    "/etc/ssl/certs",                       // Debian, Ubuntu, Alpine, Arch, openSUSE
    "/etc/pki/tls/certs",                   // Fedora, RHEL (hashed when c_rehash was run)
    "/var/lib/ca-certificates/openssl",     // openSUSE
    "/etc/ca-certificates/extracted/cadir", // Arch
    "/etc/pki/ca-trust/extracted/openssl",  // older Fedora
};

bool is_regular_readable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && ::access(path.c_str(), R_OK) == 0;
}

// A directory OpenSSL can look CAs up in: it holds at least one "XXXXXXXX.N" hash link.
bool is_hashed_dir(const std::string& path) {
  struct DirClose {
    void operator()(DIR* dir) const noexcept { ::closedir(dir); }
  };
  std::unique_ptr<DIR, DirClose> dir(::opendir(path.c_str()));
  if (!dir) return false;
  while (const dirent* entry = ::readdir(dir.get())) {
    std::string_view name = entry->d_name;
    if (name.size() < 10 || name[8] != '.') continue;
    bool hex = true;
    for (std::size_t i = 0; i < 8 && hex; ++i) hex = std::isxdigit(static_cast<unsigned char>(name[i])) != 0;
    if (hex && std::isdigit(static_cast<unsigned char>(name[9])) != 0) return true;
  }
  return false;
}

std::string env_value(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// The text of OpenSSL's error reasons, loaded the first time one is read.
void load_error_strings() {
#ifdef RLOCK_OPENSSL_LAZY_STRINGS
  if (g_strings_wanted) return;
  g_strings_wanted = true;
  __real_ossl_err_load_crypto_strings();
  __real_ossl_err_load_SSL_strings();
#endif
}

// The reason OpenSSL queued last, and the queue emptied.
std::string openssl_reason() {
  load_error_strings();
  std::string reason;
  while (unsigned long code = ::ERR_get_error()) {
    const char* text = ::ERR_reason_error_string(code);
    if (text != nullptr) {
      reason = text;
    } else {
      char buffer[256];
      ::ERR_error_string_n(code, buffer, sizeof buffer);
      reason = buffer;
    }
  }
  return reason.empty() ? "unknown OpenSSL error" : reason;
}

void check_readable(const std::string& path, std::string_view what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ConfigError(fmt::format("cannot read {} {}: {}", what, path, std::strerror(errno)));
  ::close(fd);
}

struct CtxFree {
  void operator()(SSL_CTX* ctx) const noexcept { ::SSL_CTX_free(ctx); }
};

struct Context {
  std::unique_ptr<SSL_CTX, CtxFree> ctx;
  std::string trust;        // what the chain is verified against, for messages
  std::string system_trust; // the system store's file or directory, when it is what is trusted
  // The trusted CAs, loaded by verify_chain() when a full handshake first needs them.
  std::string trust_file;
  std::string trust_dir;
  bool user_trust = false; // --cacert/--cacertdir: a file that does not load is an error
  bool trust_loaded = false;
  std::string trust_error; // why the user's CAs did not load, for every handshake that needs them
  TlsSettings settings;    // what the context was made for
  // tls_session_files() when the context was made; changed_files: the CA file or directory
  // changed before load_trust() read it, so the sessions this context verifies are not cached.
  std::string files;
  bool changed_files = false;
};

// Called when a private key wants a passphrase: rlock has no one to ask, so it refuses and
// remembers that it was asked, to say "encrypted" rather than OpenSSL's decoder error.
int refuse_passphrase(char* /*buffer*/, int /*size*/, int /*rwflag*/, void* userdata) {
  *static_cast<bool*>(userdata) = true;
  return 0;
}

// Per-connection facts the callbacks record (SSL app data).
struct SessionFacts {
  bool cert_requested = false;
  std::string first_bytes; // up to 40 bytes the server sent first
  std::string trust_error; // the CA file did not load (Context::trust_error)
  std::string cache_key;   // tls_session_key(); empty: no session cache
  const Context* context = nullptr;
  bool offered = false; // a cached session was offered
  bool refresh = false; // ... and is past half its lifetime: store the server's next ticket
  long verified_at = 0; // ... resting on the full handshake of this time (load_tls_session)
  bool stored = false;  // a ticket of this connection is stored already
};

// OpenSSL's new-session callback: TLS 1.3 tickets arrive after the handshake, with the first
// read. The first ticket of a full, verified handshake is stored (the server sends two); on a
// resumed one, only when the cached session is getting old. Returns 0: OpenSSL keeps ownership.
int remember_session(SSL* ssl, SSL_SESSION* session) {
  auto* facts = static_cast<SessionFacts*>(::SSL_get_ex_data(ssl, 0));
  if (facts == nullptr || facts->cache_key.empty() || facts->stored) return 0;
  if (facts->context != nullptr && facts->context->changed_files) return 0;
  if (::SSL_session_reused(ssl) == 1 && !facts->refresh) return 0;
  if (::SSL_version(ssl) != TLS1_3_VERSION || ::SSL_SESSION_is_resumable(session) != 1) return 0;
  if (::SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE && ::SSL_get_verify_result(ssl) != X509_V_OK) return 0;
  facts->stored = true;
  const bool reused = ::SSL_session_reused(ssl) == 1;
  store_tls_session(facts->cache_key, session, reused ? facts->verified_at : static_cast<long>(std::time(nullptr)));
  return 0;
}

int note_cert_request(SSL* ssl, void* /*arg*/) {
  if (auto* facts = static_cast<SessionFacts*>(::SSL_get_ex_data(ssl, 0))) facts->cert_requested = true;
  return 1;
}

long record_first_bytes(BIO* bio, int oper, const char* argp, std::size_t /*len*/, int /*argi*/, long /*argl*/, int ret,
                        std::size_t* processed) {
  if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed != nullptr && *processed > 0) {
    auto* facts = reinterpret_cast<SessionFacts*>(::BIO_get_callback_arg(bio));
    if (facts != nullptr && facts->first_bytes.size() < 40) {
      facts->first_bytes.append(argp, std::min<std::size_t>(*processed, 40 - facts->first_bytes.size()));
    }
  }
  return ret;
}

std::string trust_description(const TrustStore& store) {
  if (!store.dir.empty()) return store.dir;
  if (!store.file.empty()) return store.file;
  return "no system trust store found";
}

Context make_context(const TlsSettings& settings) {
  // No clean-up at exit: the contexts cached below are freed by a static destructor, which
  // must not find OpenSSL already torn down by its own atexit handler.
#ifdef RLOCK_OPENSSL_LAZY_CPUID
  g_openssl_wanted = true;
  __real_OPENSSL_cpuid_setup();
#endif
  ::OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, nullptr);
  Context context;
  context.ctx.reset(::SSL_CTX_new(::TLS_client_method()));
  if (!context.ctx) throw Error(ExitCode::internal, fmt::format("cannot set up TLS: {}", openssl_reason()));
  SSL_CTX* ctx = context.ctx.get();
  ::SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  ::SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A server that closes without close_notify has still delivered every framed reply.
  ::SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  ::SSL_CTX_set_cert_cb(ctx, note_cert_request, nullptr);
  // Sessions go to the on-disk cache only (tls_session_cache.hpp), never to OpenSSL's own.
  ::SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  ::SSL_CTX_sess_set_new_cb(ctx, remember_session);

  if (!settings.key.empty() && settings.cert.empty()) {
    throw ConfigError(fmt::format("TLS key {} given without a certificate: add --cert FILE", settings.key));
  }
  if (!settings.cert.empty()) {
    check_readable(settings.cert, "TLS client certificate");
    if (::SSL_CTX_use_certificate_chain_file(ctx, settings.cert.c_str()) != 1) {
      throw ConfigError(
          fmt::format("TLS client certificate {} is not a PEM certificate: {}", settings.cert, openssl_reason()));
    }
    const std::string& key = settings.key.empty() ? settings.cert : settings.key;
    check_readable(key, "TLS client key");
    bool asked_passphrase = false;
    ::SSL_CTX_set_default_passwd_cb(ctx, refuse_passphrase);
    ::SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked_passphrase);
    int loaded = ::SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM);
    ::SSL_CTX_set_default_passwd_cb(ctx, nullptr);
    ::SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
    if (loaded != 1) {
      const bool mismatch = ERR_GET_REASON(::ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
      std::string reason = openssl_reason();
      if (mismatch) {
        throw ConfigError(fmt::format("TLS client key {} does not belong to the certificate {}", key, settings.cert));
      }
      if (asked_passphrase) {
        throw ConfigError(fmt::format("TLS client key {} is encrypted and rlock cannot ask for its passphrase: "
                                      "decrypt it (openssl pkey -in {} -out NEW.key) and keep it mode 0600",
                                      key, key));
      }
      throw ConfigError(fmt::format("TLS client key {} is not a PEM private key: {}", key, reason));
    }
    if (::SSL_CTX_check_private_key(ctx) != 1) {
      throw ConfigError(fmt::format("TLS client key {} does not belong to the certificate {}: {}", key, settings.cert,
                                    openssl_reason()));
    }
  }

  if (settings.verify == TlsVerify::none) {
    ::SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    context.trust = "nothing (verification off)";
    return context;
  }
  ::SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (!settings.cacert.empty() || !settings.cacertdir.empty()) {
    if (!settings.cacert.empty()) check_readable(settings.cacert, "CA certificate file");
    if (!settings.cacertdir.empty()) {
      struct stat st {};
      if (::stat(settings.cacertdir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw ConfigError(fmt::format("CA certificate directory {} is not a directory", settings.cacertdir));
      }
    }
    context.trust_file = settings.cacert;
    context.trust_dir = settings.cacertdir;
    context.user_trust = true;
    context.trust = settings.cacert.empty() ? settings.cacertdir : settings.cacert;
    return context;
  }
  TrustStore store = find_system_trust_store();
  context.trust_file = store.file;
  context.trust_dir = store.dir;
  context.trust = trust_description(store);
  context.system_trust = store.dir.empty() ? store.file : store.dir;
  log::verbose("verifying TLS certificates against {}", context.trust);
  return context;
}

// Loads the trusted CAs into the context's store. Returns false, with trust_error set, when the
// user's CA file holds no usable certificate; a system store that does not load is only logged.
bool load_trust(Context& context) {
  if (context.trust_loaded) return context.trust_error.empty();
  context.trust_loaded = true;
  if (context.trust_file.empty() && context.trust_dir.empty()) return true;
  // The key of the sessions cached names the files as they were when the context was made.
  const auto check_files = [&context] {
    if (tls_session_files(context.settings, context.system_trust) == context.files) return;
    context.changed_files = true;
    log::verbose("not caching TLS sessions: {} changed since this run started", context.trust);
  };
  if (::SSL_CTX_load_verify_locations(context.ctx.get(),
                                      context.trust_file.empty() ? nullptr : context.trust_file.c_str(),
                                      context.trust_dir.empty() ? nullptr : context.trust_dir.c_str()) == 1) {
    check_files();
    return true;
  }
  check_files();
  if (!context.user_trust) {
    log::verbose("could not load the trust store {}: {}", context.trust, openssl_reason());
    return true;
  }
  context.trust_error =
      fmt::format("CA certificate file {} holds no usable PEM certificate: {}", context.trust_file, openssl_reason());
  return false;
}

// OpenSSL's chain verification, after loading the trusted CAs on first use: a resumed
// handshake verifies nothing, so a run that resumes never decodes the CA file (about 2.5 M
// instructions for one certificate; a bundle of a few hundred costs far more).
int verify_chain(X509_STORE_CTX* store_ctx, void* arg) {
  auto* context = static_cast<Context*>(arg);
  if (!load_trust(*context)) {
    auto* ssl = static_cast<SSL*>(::X509_STORE_CTX_get_ex_data(store_ctx, ::SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* facts = ssl == nullptr ? nullptr : static_cast<SessionFacts*>(::SSL_get_ex_data(ssl, 0));
    if (facts != nullptr) facts->trust_error = context->trust_error;
    ::X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
  return ::X509_verify_cert(store_ctx);
}

// The context for these settings, made on first use: a run that dials several nodes with the
// same settings loads the certificates once.
const Context& context_for(const TlsSettings& settings) {
  static std::map<std::string, Context> contexts;
  std::string key = fmt::format("{}\n{}\n{}\n{}\n{}", settings.cacert, settings.cacertdir, settings.cert, settings.key,
                                to_string(settings.verify));
  auto found = contexts.find(key);
  if (found != contexts.end()) return found->second;
  Context& made = contexts.emplace(key, make_context(settings)).first->second;
  made.settings = settings;
  made.files = tls_session_files(settings, made.system_trust);
  // The map's nodes stay put: the callback may keep a pointer to its context.
  if (settings.verify != TlsVerify::none) ::SSL_CTX_set_cert_verify_callback(made.ctx.get(), verify_chain, &made);
  return made;
}

bool is_client_cert_alert(unsigned long code) {
  int reason = ERR_GET_REASON(code);
  if (reason < SSL_AD_REASON_OFFSET) return false;
  switch (reason - SSL_AD_REASON_OFFSET) {
  case SSL_AD_HANDSHAKE_FAILURE:
  case SSL_AD_BAD_CERTIFICATE:
  case SSL_AD_UNSUPPORTED_CERTIFICATE:
  case SSL_AD_CERTIFICATE_REVOKED:
  case SSL_AD_CERTIFICATE_EXPIRED:
  case SSL_AD_CERTIFICATE_UNKNOWN:
  case SSL_AD_UNKNOWN_CA:
  case SSL_AD_ACCESS_DENIED:
  case SSL_AD_CERTIFICATE_REQUIRED: return true;
  default: return false;
  }
}

bool looks_like_tls(const std::string& first_bytes) {
  // A TLS record starts with its content type: handshake (0x16) or alert (0x15).
  return first_bytes.empty() || first_bytes[0] == '\x16' || first_bytes[0] == '\x15';
}

} // namespace

struct TlsStream::State {
  SessionFacts facts;
  std::string cert; // the client certificate given, for messages
  std::string expected_name;
  std::string mismatch_hint; // TlsSettings::mismatch_hint
  std::string trust;
};

std::vector<std::string> system_trust_store_candidates() {
  std::vector<std::string> out;
  out.emplace_back("$SSL_CERT_FILE, $SSL_CERT_DIR");
  out.emplace_back(::X509_get_default_cert_dir());
  for (const char* dir : k_hashed_dirs) out.emplace_back(dir);
  out.emplace_back(::X509_get_default_cert_file());
  for (const char* file : k_bundle_files) out.emplace_back(file);
  return out;
}

TrustStore find_system_trust_store() {
  TrustStore store;
  store.file = env_value(::X509_get_default_cert_file_env());
  store.dir = env_value(::X509_get_default_cert_dir_env());
  if (!store.file.empty() || !store.dir.empty()) return store;
  std::vector<std::string> dirs{::X509_get_default_cert_dir()};
  dirs.insert(dirs.end(), std::begin(k_hashed_dirs), std::end(k_hashed_dirs));
  for (const auto& dir : dirs) {
    if (is_hashed_dir(dir)) {
      store.dir = dir;
      return store;
    }
  }
  std::vector<std::string> files{::X509_get_default_cert_file()};
  files.insert(files.end(), std::begin(k_bundle_files), std::end(k_bundle_files));
  for (const auto& file : files) {
    if (is_regular_readable(file)) {
      store.file = file;
      return store;
    }
  }
  return store;
}

TlsStream::TlsStream(SSL* ssl, std::string peer)
    : m_ssl(ssl), m_state(std::make_unique<State>()), m_peer(std::move(peer)) {
  ::SSL_set_ex_data(m_ssl, 0, &m_state->facts);
}

TlsStream::~TlsStream() { ::SSL_free(m_ssl); }

bool TlsStream::pending() const noexcept { return ::SSL_pending(m_ssl) > 0; }

bool TlsStream::offered_cached_session() const noexcept { return m_state->facts.offered; }

void TlsStream::forget_cached_session() const { forget_tls_session(m_state->facts.cache_key); }

void TlsStream::fail(int ssl_result, int ret, const char* doing) {
  int saved_errno = errno;
  State* state = m_state.get();
  unsigned long code = ::ERR_peek_last_error();
  std::string reason = code != 0 ? openssl_reason() : std::string();
  const bool in_handshake = ::SSL_is_init_finished(m_ssl) == 0;

  if (in_handshake && !state->facts.trust_error.empty()) throw ConfigError(state->facts.trust_error);
  if (in_handshake && ssl_result == SSL_ERROR_SSL) {
    long verified = ::SSL_get_verify_result(m_ssl);
    if (verified != X509_V_OK) {
      std::string why = ::X509_verify_cert_error_string(verified);
      std::string hint;
      if ((verified == X509_V_ERR_HOSTNAME_MISMATCH || verified == X509_V_ERR_IP_ADDRESS_MISMATCH) &&
          !state->mismatch_hint.empty()) {
        hint = "; " + state->mismatch_hint;
      } else if (verified == X509_V_ERR_HOSTNAME_MISMATCH || verified == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        hint = fmt::format("; the certificate does not name '{}': dial a name it carries, or set "
                           "--tls-server-name to one, or --tls-verify ca to check the chain only",
                           state->expected_name);
      } else if (verified == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                 verified == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                 verified == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                 verified == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) {
        hint = fmt::format("; trusted CAs: {}; give the CA that signed it with --cacert FILE", state->trust);
      }
      throw ConfigError(fmt::format("TLS certificate of {} failed verification: {} (expected name '{}'){}", m_peer, why,
                                    state->expected_name, hint));
    }
  }
  const bool cert_alert = ssl_result == SSL_ERROR_SSL && code != 0 && is_client_cert_alert(code);
  // Under TLS 1.3 the server judges the client certificate after the client has finished
  // its side of the handshake: the refusal comes as an alert, or a bare close, at the first
  // read. Under TLS 1.2 it comes within the handshake.
  const bool early_close = !m_app_data_seen && (ssl_result == SSL_ERROR_SYSCALL || ssl_result == SSL_ERROR_ZERO_RETURN);
  if (state->facts.cert_requested && (cert_alert || (early_close && !in_handshake && state->cert.empty()))) {
    if (state->cert.empty()) {
      throw AuthError(fmt::format("the Redis server at {} requires a TLS client certificate{}: give one with "
                                  "--cert FILE --key FILE",
                                  m_peer, reason.empty() ? "" : fmt::format(" ({})", reason)));
    }
    throw AuthError(fmt::format("the Redis server at {} refused the TLS client certificate {}{}: is it signed by "
                                "a CA the server trusts (its tls-ca-cert-file)?",
                                m_peer, state->cert, reason.empty() ? "" : fmt::format(" ({})", reason)));
  }
  if (in_handshake && !looks_like_tls(state->facts.first_bytes)) {
    throw ConfigError(fmt::format("{} does not speak TLS (it answered \"{}\"): use redis:// for a plaintext port",
                                  m_peer, printable(state->facts.first_bytes)));
  }
  if (ssl_result == SSL_ERROR_SSL) {
    if (in_handshake) {
      throw ConfigError(fmt::format("TLS handshake with {} failed: {}", m_peer, reason));
    }
    throw UnavailableError(fmt::format("TLS error {} {}: {}", doing, m_peer, reason));
  }
  if (ssl_result == SSL_ERROR_SYSCALL && ret < 0 && saved_errno != 0) {
    throw UnavailableError(fmt::format("{} {} failed: {}", doing, m_peer, std::strerror(saved_errno)));
  }
  if (in_handshake) {
    throw UnavailableError(fmt::format("{} closed the connection during the TLS handshake", m_peer));
  }
  throw UnavailableError(fmt::format("connection to {} closed by the server", m_peer));
}

std::unique_ptr<TlsStream> TlsStream::begin(int fd, const TlsSettings& settings, const std::string& host,
                                            const std::string& peer, bool offer_cached_session) {
  const Context& context = context_for(settings);
  SSL* ssl = ::SSL_new(context.ctx.get());
  if (ssl == nullptr) throw Error(ExitCode::internal, fmt::format("cannot set up TLS: {}", openssl_reason()));
  std::unique_ptr<TlsStream> stream(new TlsStream(ssl, peer));
  State* state = stream->m_state.get();
  state->cert = settings.cert;
  state->trust = context.trust;
  state->expected_name = settings.server_name.empty() ? host : settings.server_name;
  state->mismatch_hint = settings.mismatch_hint;
  const std::string& name = state->expected_name;
  const bool ip = is_ip_literal(name);
  if (::SSL_set_fd(ssl, fd) != 1) throw Error(ExitCode::internal, fmt::format("SSL_set_fd: {}", openssl_reason()));
  BIO* bio = ::SSL_get_rbio(ssl);
  ::BIO_set_callback_ex(bio, record_first_bytes);
  ::BIO_set_callback_arg(bio, reinterpret_cast<char*>(&state->facts));
  // SNI carries a DNS name only (RFC 6066); an IP literal sends none.
  if (!ip &&
      ::SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(name.c_str())) != 1) {
    throw ConfigError(fmt::format("cannot send '{}' as the TLS server name: {}", name, openssl_reason()));
  }
  if (settings.verify == TlsVerify::full) {
    if (ip) {
      if (::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(ssl), name.c_str()) != 1) {
        throw ConfigError(fmt::format("cannot verify the IP address '{}': {}", name, openssl_reason()));
      }
    } else {
      ::SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (::SSL_set1_host(ssl, name.c_str()) != 1) {
        throw ConfigError(fmt::format("cannot verify the name '{}': {}", name, openssl_reason()));
      }
    }
  }
  stream->m_verify = settings.verify;
  if (settings.session_cache) {
    SessionFacts& facts = state->facts;
    facts.cache_key = tls_session_key(settings, peer, name, context.files);
    facts.context = &context;
    if (offer_cached_session) {
      if (SSL_SESSION* session = load_tls_session(facts.cache_key, facts.refresh, facts.verified_at)) {
        // SSL_set_session takes its own reference.
        facts.offered = ::SSL_set_session(ssl, session) == 1;
        ::SSL_SESSION_free(session);
      }
    }
  }
  return stream;
}

bool TlsStream::step(Want& want) {
  want = Want::none;
  ::ERR_clear_error();
  int ret = ::SSL_connect(m_ssl);
  if (ret == 1) {
    log::verbose("TLS {} with {} ({}, verify {})", ::SSL_get_version(m_ssl), m_peer, ::SSL_get_cipher_name(m_ssl),
                 to_string(m_verify));
    if (::SSL_session_reused(m_ssl) == 1) {
      log::verbose("TLS session resumed with {} (verified when it was cached)", m_peer);
    } else if (m_state->facts.offered) {
      log::verbose("TLS session not resumed: {} made a full handshake", m_peer);
    }
    return true;
  }
  int result = ::SSL_get_error(m_ssl, ret);
  if (result == SSL_ERROR_WANT_READ || result == SSL_ERROR_WANT_WRITE) {
    want = result == SSL_ERROR_WANT_READ ? Want::read : Want::write;
    return false;
  }
  fail(result, ret, "handshaking with");
}

void TlsStream::timed_out() const {
  if (m_state->facts.first_bytes.empty()) {
    throw UnavailableError(
        fmt::format("no TLS answer from {} within the connect timeout: is it a plaintext port?", m_peer));
  }
  throw UnavailableError(fmt::format("timed out in the TLS handshake with {}", m_peer));
}

std::size_t TlsStream::write(std::string_view bytes, Want& want) {
  want = Want::none;
  ::ERR_clear_error();
  std::size_t written = 0;
  int ret = ::SSL_write_ex(m_ssl, bytes.data(), bytes.size(), &written);
  if (ret == 1) return written;
  int result = ::SSL_get_error(m_ssl, ret);
  if (result == SSL_ERROR_WANT_READ) {
    want = Want::read;
    return 0;
  }
  if (result == SSL_ERROR_WANT_WRITE) {
    want = Want::write;
    return 0;
  }
  if (result == SSL_ERROR_SYSCALL && !m_app_data_seen && m_state->facts.cert_requested) read_refusal();
  fail(result, -1, "writing to");
}

void TlsStream::read_refusal() {
  // Under TLS 1.3 a server that refuses the client certificate sends an alert and closes once
  // the client has finished the handshake; the first write can race that close and fail with
  // a reset while the alert still waits in the socket. Read it, so that the refusal is
  // reported as what it is and not as a network failure.
  int saved_errno = errno;
  ::ERR_clear_error();
  char byte = 0;
  std::size_t got = 0;
  int ret = ::SSL_read_ex(m_ssl, &byte, 1, &got);
  if (ret != 1) {
    int result = ::SSL_get_error(m_ssl, ret);
    unsigned long code = ::ERR_peek_last_error();
    if (result == SSL_ERROR_SSL && code != 0 && is_client_cert_alert(code)) fail(result, ret, "reading from");
  }
  ::ERR_clear_error();
  errno = saved_errno;
}

bool TlsStream::read(std::string& out, Want& want) {
  want = Want::none;
  ::ERR_clear_error();
  char buffer[16384];
  std::size_t got = 0;
  int ret = ::SSL_read_ex(m_ssl, buffer, sizeof buffer, &got);
  if (ret == 1) {
    m_app_data_seen = true;
    out.append(buffer, got);
    return true;
  }
  int result = ::SSL_get_error(m_ssl, ret);
  if (result == SSL_ERROR_WANT_READ) {
    want = Want::read;
    return true;
  }
  if (result == SSL_ERROR_WANT_WRITE) {
    want = Want::write;
    return true;
  }
  if (result == SSL_ERROR_ZERO_RETURN && (m_app_data_seen || !m_state->facts.cert_requested)) return false;
  fail(result, -1, "reading from");
}

} // namespace rlock::redis
