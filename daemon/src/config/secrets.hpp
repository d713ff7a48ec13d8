// Secrets (API key, tenant id, webhook secret, Redis password, local API token) come from the environment or from
// files, never from the config text, and are never logged: `redact` shows at most the last 4 characters.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace aforo::config {

struct secrets {
  std::string api_key;         ///< env AFORO_API_KEY, else the file aforo.api_key_file; may be empty
  std::string tenant_id;       ///< env AFORO_TENANT_ID, else aforo.tenant_id
  std::string webhook_secret;  ///< env AFORO_WEBHOOK_SECRET, else margin_guard.webhook_secret_file
  std::string redis_password;  ///< env AFORO_REDIS_PASSWORD, else cache.redis_password_file; else the URL's
  std::string api_token;       ///< env AFORO_SIDECAR_TOKEN, else server.auth_token_file; empty = no local token
};

/// Resolves the secrets; problems (unreadable file, empty file) are appended to errors with their key.
secrets load_secrets(const sidecar_config& c, std::vector<std::string>& errors);

/// The shortest local API token accepted.
inline constexpr std::size_t min_api_token_chars = 16;

/// Why `token` cannot be the local API token (too short, or not an RFC 6750 b64token), or empty.
std::string bearer_token_problem(const std::string& token);

/// The local API token alone (env AFORO_SIDECAR_TOKEN, else server.auth_token_file), as load_secrets
/// resolves it; for local clients of the sidecar such as replay-dead-letter.
std::string load_api_token(const sidecar_config& c, std::vector<std::string>& errors);

/// "sk_live_…a1b2" style: the last 4 characters at most, or "(none)".
std::string redact(const std::string& secret);

/// A URL with the password of its user part replaced by "****" ("redis://:****@host:6379/0"), for
/// logs and error messages. Anything else is returned as it is.
std::string redact_url(const std::string& url);

/// Whether the URL carries a password in its user part (scheme://user:password@...).
bool url_has_password(const std::string& url);

}  // namespace aforo::config
