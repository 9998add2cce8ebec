// SPDX-License-Identifier: MIT
// The private on-disk cache of TLS sessions: one file per verified endpoint, so that the next
// rlock run to it resumes (TLS 1.3) instead of paying a full handshake (TLS SESSION CACHE in rlock(1)).
#pragma once

#include <string>

struct ssl_session_st;

namespace rlock::redis {

struct TlsSettings;

// Every file the verification or the client's identity rests on (CA file, CA directory or the
// system store, client certificate and key), each with its inode, size and modification time,
// so that a rotated file makes another key. Taken when the files are loaded: a process that
// keeps the old ones in memory must not cache what it verified with them under the new ones.
std::string tls_session_files(const TlsSettings& settings, const std::string& system_trust);

// What a cached session may only ever be offered to: the endpoint, the name verified and sent
// as SNI, the verification mode, and `files` (tls_session_files()).
std::string tls_session_key(const TlsSettings& settings, const std::string& peer, const std::string& name,
                            const std::string& files);

// The cached session for `key`, or nullptr (none, unsafe, corrupt, for another key, expired,
// or resting on a verification more than an hour old; -v says why). The caller owns the
// session (SSL_SESSION_free). `refresh` is set when the session is past half its lifetime, so
// that the server's next ticket should replace it; `verified_at` is when the full handshake
// that the session goes back to verified the server (Unix time), which a refresh keeps.
ssl_session_st* load_tls_session(const std::string& key, bool& refresh, long& verified_at);

// Replaces the cached session for `key` (written to a temporary name and renamed). Stores the
// session without the server's certificate: resumption does not need it, and decoding it is
// most of what loading costs. Failures are only logged (-v): the cache is an optimisation.
// `verified_at`: now after a full handshake, the loaded session's after a refresh.
void store_tls_session(const std::string& key, ssl_session_st* session, long verified_at);

// Removes the cached session for `key`, after a handshake that offered it failed.
void forget_tls_session(const std::string& key);

} // namespace rlock::redis
