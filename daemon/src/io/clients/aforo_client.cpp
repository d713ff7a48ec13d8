// Client options and credential headers for requests to Aforo; see aforo_client.hpp.
#include "io/clients/aforo_client.hpp"

namespace aforo::io {

io::client_options aforo_client_options(const config::sidecar_config& cfg, std::size_t max_response_body) {
  io::client_options o;
  o.ca_file = cfg.aforo.ca_file;
  o.connect_timeout = cfg.aforo.connect_timeout;
  o.request_timeout = cfg.retry.timeout;
  o.user_agent = "aforo-sidecar/" AFORO_VERSION;
  o.max_response_body = max_response_body;
  return o;
}

std::vector<std::pair<std::string, std::string>> aforo_auth_headers(const config::sidecar_config& cfg,
                                                                    const config::secrets& sec) {
  std::vector<std::pair<std::string, std::string>> h;
  if (!sec.api_key.empty()) {
    if (cfg.aforo.auth == config::auth_scheme::bearer)
      h.emplace_back("Authorization", "Bearer " + sec.api_key);
    else
      h.emplace_back("X-API-Key", sec.api_key);
  }
  if (!sec.tenant_id.empty()) h.emplace_back("X-Tenant-Id", sec.tenant_id);
  return h;
}

}  // namespace aforo::io
