// Secret resolution; see secrets.hpp.
#include "config/secrets.hpp"

#include <cstdlib>
#include <utility>
#include <fstream>
#include <sstream>

namespace aforo::config {
namespace {

std::string trim_line_end(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

std::string from_env_or_file(const char* env, const std::string& file, const std::string& key,
                             std::vector<std::string>& errors) {
  if (const char* v = std::getenv(env); v != nullptr && *v != '\0') return trim_line_end(v);
  if (file.empty()) return {};
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    errors.push_back(key + ": cannot read the secret file " + file);
    return {};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  auto s = trim_line_end(ss.str());
  if (s.empty()) errors.push_back(key + ": the secret file " + file + " is empty");
  if (s.find('\n') != std::string::npos) errors.push_back(key + ": the secret file " + file + " must hold one line");
  return s;
}

}  // namespace

std::string bearer_token_problem(const std::string& token) {
  if (token.size() < min_api_token_chars) {
    return "is shorter than " + std::to_string(min_api_token_chars) +
           " characters (make one with `openssl rand -hex 32`)";
  }
  // RFC 6750 b64token: what an Authorization: Bearer header carries without quoting.
  std::size_t i = 0;
  auto tokchar = [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
           ch == '_' || ch == '~' || ch == '+' || ch == '/';
  };
  while (i < token.size() && tokchar(token[i])) ++i;
  while (i < token.size() && token[i] == '=') ++i;
  if (i != token.size()) return "holds a character other than letters, digits and -._~+/ (and = at the end)";
  return {};
}

std::string load_api_token(const sidecar_config& c, std::vector<std::string>& errors) {
  std::string t = from_env_or_file("AFORO_SIDECAR_TOKEN", c.server.auth_token_file, "server.auth_token_file", errors);
  if (t.empty()) return t;
  if (const auto why = bearer_token_problem(t); !why.empty()) {
    errors.push_back("server.auth_token_file: the local API token " + why);
    t.clear();
  }
  return t;
}

secrets load_secrets(const sidecar_config& c, std::vector<std::string>& errors) {
  secrets s;
  s.api_key = from_env_or_file("AFORO_API_KEY", c.aforo.api_key_file, "aforo.api_key_file", errors);
  if (const char* t = std::getenv("AFORO_TENANT_ID"); t != nullptr && *t != '\0')
    s.tenant_id = trim_line_end(t);
  else
    s.tenant_id = c.aforo.tenant_id;
  s.webhook_secret = from_env_or_file("AFORO_WEBHOOK_SECRET", c.margin_guard.webhook_secret_file,
                                      "margin_guard.webhook_secret_file", errors);
  s.redis_password =
      from_env_or_file("AFORO_REDIS_PASSWORD", c.cache.redis_password_file, "cache.redis_password_file", errors);
  s.api_token = load_api_token(c, errors);
  for (char ch : s.api_key) {
    if (static_cast<unsigned char>(ch) < 0x21 || ch == 0x7f) {
      errors.push_back("aforo.api_key_file: the API key holds a space or control character");
      s.api_key.clear();
      break;
    }
  }
  return s;
}

namespace {
// [begin, end) of the password in "scheme://user:password@host...", or npos when there is none.
std::pair<std::size_t, std::size_t> url_password(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return {std::string::npos, 0};
  const auto start = scheme + 3;
  const auto end_auth = url.find_first_of("/?#", start);
  const auto at = url.rfind('@', end_auth == std::string::npos ? std::string::npos : end_auth);
  if (at == std::string::npos || at < start) return {std::string::npos, 0};
  const auto colon = url.find(':', start);
  if (colon == std::string::npos || colon > at) return {std::string::npos, 0};
  return {colon + 1, at};
}
}  // namespace

std::string redact_url(const std::string& url) {
  const auto [b, e] = url_password(url);
  if (b == std::string::npos || b == e) return url;
  return url.substr(0, b) + "****" + url.substr(e);
}

bool url_has_password(const std::string& url) {
  const auto [b, e] = url_password(url);
  return b != std::string::npos && b != e;
}

std::string redact(const std::string& secret) {
  if (secret.empty()) return "(none)";
  if (secret.size() <= 8) return "…";
  return "…" + secret.substr(secret.size() - 4);
}

}  // namespace aforo::config
