// Operational endpoints; see ops_service.hpp.
#include "app/ops/ops_service.hpp"
#include "app/pipeline/plugin_drops.hpp"

#include "util/metrics.hpp"

namespace aforo::app {

void ops_service::register_routes(io::router& routes) {
  routes.add_sync("GET", "/healthz",
                  [](io::http_request&) { return io::http_response::json(200, R"({"status":"ok"})"); });

  routes.add_sync("GET", "/readyz", [this](io::http_request&) {
    status_report r;
    if (!listening_) {
      r.ready = false;
      r.not_ready_reason = "listeners not bound";
    }
    // Every service adds its facts; the first one not ready gives the reason.
    for (const auto& s : all_) {
      status_report one;
      s->readiness(one);
      if (r.ready && !one.ready) {
        r.ready = false;
        r.not_ready_reason = std::move(one.not_ready_reason);
      }
      for (auto& [k, v] : one.fields) r.fields[k] = std::move(v);
    }
    std::string body = r.ready ? R"({"status":"ready")" : R"({"status":"not_ready","reason":)";
    if (!r.ready) io::append_json_string(body, r.not_ready_reason);
    for (const auto& [k, v] : r.fields) {
      body += ',';
      io::append_json_string(body, k);
      body += ':';
      body += v;
    }
    body += '}';
    return io::http_response::json(r.ready ? 200 : 503, std::move(body));
  });

  routes.add_sync("GET", "/metrics", [](io::http_request&) {
    io::http_response res;
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    res.body = util::metrics().render();
    return res;
  });

  routes.add_sync("GET", "/v1/handshake", [this](io::http_request&) {
    // What is not known yet is reported as such, so the plugin's connected line is always complete.
    std::map<std::string, std::string> fields{
        {"ingest", R"("unknown")"},
        {"entitlements", "null"},
        {"redis", ctx_.config.cache.redis.empty() ? R"("disabled")" : R"("unavailable")"},
        // The plugin sends at most this many events per POST /v1/ingest/batch.
        {"max_batch_events", std::to_string(ctx_.config.server.max_batch_events)},
    };
    for (const auto& s : all_) s->handshake_fields(fields);
    // What the plugin's workers reported dropping before their events reached this sidecar.
    fields["plugin_events_dropped"] = R"({"buffer_full":)" + std::to_string(plugin_dropped("buffer_full").value()) +
                                      R"(,"overflow_full":)" + std::to_string(plugin_dropped("overflow_full").value()) +
                                      "}";
    std::string body = R"({"sidecar_version":")" AFORO_VERSION R"(","tenant_id":)";
    io::append_json_string(body, ctx_.secrets.tenant_id);
    for (const auto& [k, v] : fields) {
      body += ',';
      io::append_json_string(body, k);
      body += ':';
      body += v;
    }
    body += '}';
    return io::http_response::json(200, std::move(body));
  });
}

}  // namespace aforo::app
