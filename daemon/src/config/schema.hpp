// The one list of config keys: every key's YAML path, kind and member, and whether a SIGHUP reload can
// apply it. The loader, the flattener (reference test, reload diff) and the docs test all walk this list,
// so a key is declared once.
#pragma once

#include <array>
#include <string_view>
#include <utility>

#include "config/config.hpp"

namespace aforo::config {

/// Whether a changed key takes effect on SIGHUP or needs a restart.
enum class reload { live, restart };

template <class E>
using choices = std::initializer_list<std::pair<std::string_view, E>>;

/// Calls the visitor once per key. V provides: text, texts, boolean, count, percent, octal, size,
/// duration, durations and choice (the visitors are in loader.cpp).
template <class C, class V>
void visit_config(C& c, V& v) {
  v.texts("listen", c.listen, reload::restart);
  v.choice("mode", c.mode,
           choices<enforcement_mode>{{"enforce", enforcement_mode::enforce}, {"shadow", enforcement_mode::shadow}},
           reload::live);

  v.size("server.max_body", c.server.max_body, reload::live);
  v.size("server.max_header", c.server.max_header, reload::live);
  v.duration("server.read_timeout", c.server.read_timeout, reload::live);
  v.duration("server.shutdown_timeout", c.server.shutdown_timeout, reload::live);
  v.octal("server.socket_mode", c.server.socket_mode, reload::restart);
  v.count("server.max_connections", c.server.max_connections, reload::live);
  v.count("server.max_batch_events", c.server.max_batch_events, reload::live);
  v.boolean("server.ingest_thread", c.server.ingest_thread, reload::restart);
  v.count("server.ingest_thread_nice", c.server.ingest_thread_nice, reload::restart);
  v.text("server.auth_token_file", c.server.auth_token_file, reload::restart);

  v.text("aforo.tenant_id", c.aforo.tenant_id, reload::restart);
  v.text("aforo.api_key_file", c.aforo.api_key_file, reload::restart);
  v.choice("aforo.auth_scheme", c.aforo.auth,
           choices<auth_scheme>{{"x-api-key", auth_scheme::x_api_key}, {"bearer", auth_scheme::bearer}},
           reload::restart);
  v.text("aforo.ingest_url", c.aforo.ingest_url, reload::restart);
  v.text("aforo.control_url", c.aforo.control_url, reload::restart);
  v.text("aforo.ca_file", c.aforo.ca_file, reload::restart);
  v.duration("aforo.connect_timeout", c.aforo.connect_timeout, reload::restart);

  v.text("entitlements.source", c.entitlements.source, reload::live);
  v.duration("entitlements.refresh_interval", c.entitlements.refresh_interval, reload::live);
  v.duration("entitlements.max_stale", c.entitlements.max_stale, reload::live);
  v.choice("entitlements.unknown_customer", c.entitlements.unknown_customer,
           choices<unknown_customer_policy>{{"block", unknown_customer_policy::block},
                                            {"allow", unknown_customer_policy::allow}},
           reload::live);
  v.percent("entitlements.quota_warning", c.entitlements.quota_warning_percent, reload::live);
  v.count("entitlements.lease_requests", c.entitlements.lease_requests, reload::live);
  v.duration("entitlements.lease_ttl", c.entitlements.lease_ttl, reload::live);
  v.text("entitlements.aforo_api.url", c.entitlements.aforo_api.url, reload::restart);
  v.text("entitlements.aforo_api.margin_url", c.entitlements.aforo_api.margin_url, reload::restart);
  v.boolean("entitlements.aforo_api.fill_missing", c.entitlements.aforo_api.fill_missing, reload::live);
  v.boolean("entitlements.aforo_api.quota_check", c.entitlements.aforo_api.quota_check, reload::live);
  v.boolean("entitlements.aforo_api.margin_check", c.entitlements.aforo_api.margin_check, reload::live);
  v.text("entitlements.aforo_api.metric", c.entitlements.aforo_api.metric, reload::live);
  v.duration("entitlements.aforo_api.quota_ttl", c.entitlements.aforo_api.quota_ttl, reload::live);
  v.duration("entitlements.aforo_api.margin_ttl", c.entitlements.aforo_api.margin_ttl, reload::live);
  v.percent("entitlements.aforo_api.refresh_at", c.entitlements.aforo_api.refresh_at, reload::live);
  v.duration("entitlements.aforo_api.wait", c.entitlements.aforo_api.wait, reload::live);
  v.duration("entitlements.aforo_api.timeout", c.entitlements.aforo_api.timeout, reload::restart);
  v.duration("entitlements.aforo_api.error_retry", c.entitlements.aforo_api.error_retry, reload::live);
  v.count("entitlements.aforo_api.connections", c.entitlements.aforo_api.connections, reload::restart);
  v.text("entitlements.aforo_api.support_url", c.entitlements.aforo_api.support_url, reload::live);

  v.text("cache.redis", c.cache.redis, reload::restart);
  v.text("cache.redis_username", c.cache.redis_username, reload::restart);
  v.text("cache.redis_password_file", c.cache.redis_password_file, reload::restart);
  v.text("cache.redis_ca_file", c.cache.redis_ca_file, reload::restart);
  v.text("cache.redis_tls_server_name", c.cache.redis_tls_server_name, reload::restart);
  v.count("cache.lru_capacity", c.cache.lru_capacity, reload::restart);
  v.duration("cache.redis_timeout", c.cache.redis_timeout, reload::restart);
  v.duration("cache.sync_interval", c.cache.sync_interval, reload::restart);
  v.choice("cache.quota_mode", c.cache.quota,
           choices<quota_mode>{{"reserve", quota_mode::reserve}, {"counters", quota_mode::counters}}, reload::restart);
  v.count("cache.quota_max_chunk", c.cache.quota_max_chunk, reload::live);
  v.count("cache.quota_unreported", c.cache.quota_unreported, reload::live);
  v.duration("cache.quota_chunk_window", c.cache.quota_chunk_window, reload::live);
  v.duration("cache.quota_chunk_ttl", c.cache.quota_chunk_ttl, reload::live);
  v.count("cache.quota_redis_down_allowance", c.cache.quota_redis_down_allowance, reload::live);
  v.percent("cache.quota_redis_down_percent", c.cache.quota_redis_down_percent, reload::live);

  v.count("batch.max_events", c.batch.max_events, reload::live);
  v.count("batch.backlog_events", c.batch.backlog_events, reload::live);
  v.count("batch.max_concurrency", c.batch.max_concurrency, reload::restart);
  v.boolean("batch.adaptive_concurrency", c.batch.adaptive_concurrency, reload::restart);
  v.duration("batch.flush_interval", c.batch.flush_interval, reload::live);
  v.choice("batch.compression", c.batch.codec,
           choices<compression>{{"lz4", compression::lz4}, {"none", compression::none}}, reload::live);
  v.duration("batch.compression_retry", c.batch.compression_retry, reload::live);

  v.count("retry.max_retries", c.retry.max_retries, reload::live);
  v.durations("retry.backoff", c.retry.backoff, reload::live);
  v.percent("retry.jitter", c.retry.jitter_percent, reload::live);
  v.duration("retry.timeout", c.retry.timeout, reload::restart);
  v.duration("retry.unauthorized_probe", c.retry.unauthorized_probe, reload::live);

  v.count("buffer.max_events", c.buffer.max_events, reload::restart);
  v.text("buffer.spool_dir", c.buffer.spool_dir, reload::restart);
  v.size("buffer.spool_max_bytes", c.buffer.spool_max_bytes, reload::restart);
  v.size("buffer.segment_bytes", c.buffer.segment_bytes, reload::restart);
  v.choice(
      "buffer.when_full", c.buffer.when_full,
      choices<when_full_policy>{{"drop_oldest", when_full_policy::drop_oldest}, {"reject", when_full_policy::reject}},
      reload::restart);
  v.choice("buffer.durability", c.buffer.durability,
           choices<durability_mode>{{"disk", durability_mode::disk}, {"memory", durability_mode::memory}},
           reload::restart);
  v.choice(
      "buffer.fsync", c.buffer.fsync,
      choices<fsync_mode>{{"always", fsync_mode::always}, {"interval", fsync_mode::interval}, {"off", fsync_mode::off}},
      reload::restart);
  v.duration("buffer.fsync_interval", c.buffer.fsync_interval, reload::restart);
  v.text("buffer.dead_letter_dir", c.buffer.dead_letter_dir, reload::restart);
  v.size("buffer.dead_letter_max_bytes", c.buffer.dead_letter_max_bytes, reload::restart);

  v.text("margin_guard.config", c.margin_guard.config, reload::live);
  v.text("margin_guard.webhook_secret_file", c.margin_guard.webhook_secret_file, reload::restart);
  v.duration("margin_guard.reload_interval", c.margin_guard.reload_interval, reload::restart);

  v.boolean("discovery.enabled", c.discovery.enabled, reload::restart);
  v.text("discovery.kong_admin_url", c.discovery.kong_admin_url, reload::restart);
  v.text("discovery.admin_token_file", c.discovery.admin_token_file, reload::restart);
  v.duration("discovery.interval", c.discovery.interval, reload::restart);
  v.text("discovery.state_dir", c.discovery.state_dir, reload::restart);
  v.duration("discovery.stale_after", c.discovery.stale_after, reload::restart);
  v.count("discovery.max_operations_per_service", c.discovery.max_operations_per_service, reload::restart);

  v.choice("log.level", c.log.level,
           choices<log_level>{{"debug", log_level::debug},
                              {"info", log_level::info},
                              {"warn", log_level::warn},
                              {"error", log_level::error}},
           reload::live);
}

}  // namespace aforo::config
