// How the sidecar talks to Aforo (ingest, test events, control plane, catalog push): one place for
// the HTTP client options and the credential headers, so every outbound request authenticates alike.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/secrets.hpp"
#include "io/http/http_client.hpp"

namespace aforo::io {

/// aforo.ca_file, aforo.connect_timeout, retry.timeout and the sidecar's User-Agent; responses larger
/// than max_response_body bytes are refused.
[[nodiscard]] io::client_options aforo_client_options(const config::sidecar_config& cfg,
                                                      std::size_t max_response_body = 1024 * 1024);

/// X-API-Key (or Authorization: Bearer with aforo.auth_scheme bearer) when a key is set, and
/// X-Tenant-Id when a tenant is set.
[[nodiscard]] std::vector<std::pair<std::string, std::string>> aforo_auth_headers(const config::sidecar_config& cfg,
                                                                                  const config::secrets& sec);

}  // namespace aforo::io
