// The sidecar's configuration: one struct per YAML section, every member with its documented default.
// config/sidecar.yaml is the annotated reference of exactly these defaults (a unit test checks it).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/pipeline/when_full.hpp"
#include "util/log_level.hpp"

namespace aforo::config {

using millis = std::chrono::milliseconds;

inline constexpr std::uint64_t KiB = 1024;
inline constexpr std::uint64_t MiB = 1024 * KiB;
inline constexpr std::uint64_t GiB = 1024 * MiB;

enum class enforcement_mode { enforce, shadow };
enum class auth_scheme { x_api_key, bearer };
enum class unknown_customer_policy { block, allow };
enum class compression { lz4, none };
using when_full_policy = core::when_full_policy;
enum class durability_mode { disk, memory };
enum class fsync_mode { always, interval, off };
using log_level = util::log::level;
enum class quota_mode { reserve, counters };

/// HTTP server limits and timeouts (this project's own section; not in the seed).
struct server_config {
  std::uint64_t max_body = 4 * MiB;                   ///< request bodies over this get 413
  std::uint64_t max_header = 16 * KiB;                ///< request line + headers over this get 431
  millis read_timeout{std::chrono::seconds(30)};      ///< before every read, incl. keep-alive idle
  millis shutdown_timeout{std::chrono::seconds(10)};  ///< SIGTERM drain bound
  std::uint32_t socket_mode = 0660;                   ///< permissions of unix listen sockets
  std::uint32_t max_connections = 1024;               ///< open at once, 1..1000000; more are answered 503 and closed
  std::uint32_t max_batch_events = 1000;              ///< events per POST /v1/ingest/batch
  bool ingest_thread = true;                          ///< parse posted events off the io thread
  std::uint32_t ingest_thread_nice = 15;              ///< that thread's nice value, 0..19
  std::string auth_token_file;  ///< local API token (or env AFORO_SIDECAR_TOKEN); empty = no token
};

struct aforo_section {
  std::string tenant_id;     ///< or env AFORO_TENANT_ID
  std::string api_key_file;  ///< or env AFORO_API_KEY; never inline
  auth_scheme auth = auth_scheme::x_api_key;
  std::string ingest_url = "https://ingest.aforo.ai/v1/ingest/batch";
  std::string control_url = "https://api.aforo.ai";
  std::string ca_file;  ///< extra CA bundle; empty = system store
  millis connect_timeout{std::chrono::seconds(5)};
};

/// Aforo's own decision endpoints (docs/design/event-fields.md#aforo-decision-endpoints): the pre-flight quota check
/// and the margin quick check.
struct aforo_api_config {
  std::string url;                              ///< origin of POST /api/v1/quota/check; empty = aforo.control_url
  std::string margin_url;                       ///< origin of GET /internal/v1/margin-guard/quick-check; empty = url
  bool fill_missing = false;                    ///< with a snapshot source: customers it lacks are asked here
  bool quota_check = true;                      ///< ask the quota check per customer and metric
  bool margin_check = true;                     ///< ask the margin quick check per customer
  std::string metric = "api_calls";             ///< metricName asked when no snapshot rule names one
  millis quota_ttl{std::chrono::seconds(1)};    ///< a quota answer is fresh this long
  millis margin_ttl{std::chrono::seconds(30)};  ///< a margin answer is fresh this long
  std::uint32_t refresh_at = 75;                ///< percent of a TTL after which a check refreshes in the background
  millis wait{std::chrono::milliseconds(30)};   ///< how long /v1/check waits for a call in flight
  millis timeout{std::chrono::seconds(2)};      ///< one call to Aforo, connect to last byte
  millis error_retry{std::chrono::seconds(1)};  ///< a key whose call failed is not asked again before this
  std::uint32_t connections = 4;                ///< kept-alive connections per origin (calls run in parallel)
  std::string support_url;                      ///< supportUrl in the L3 body; empty = left out
};

struct entitlements_config {
  std::string source = "control_plane";  ///< "control_plane", "file:PATH" or "aforo_api"
  millis refresh_interval{std::chrono::seconds(30)};
  millis max_stale{0};  ///< 0 = a stale snapshot serves until a refresh succeeds
  unknown_customer_policy unknown_customer = unknown_customer_policy::block;
  std::uint32_t quota_warning_percent = 80;   ///< used share of a limit that adds X-RateLimit-Warning
  std::uint32_t lease_requests = 200;         ///< most requests a decision lease admits in the plugin; 0 = off
  millis lease_ttl{std::chrono::seconds(1)};  ///< how long a decision lease lasts
  aforo_api_config aforo_api;

  /// Whether checks go to Aforo's decision endpoints: always (source aforo_api) or for customers
  /// the snapshot lacks (aforo_api.fill_missing).
  [[nodiscard]] bool uses_aforo_api() const { return source == "aforo_api" || aforo_api.fill_missing; }

  /// The path when source is "file:PATH", else empty.
  [[nodiscard]] std::string file_path() const {
    return source.rfind("file:", 0) == 0 ? source.substr(5) : std::string{};
  }
};

struct cache_config {
  std::string redis;                ///< redis://host:port/db, rediss:// (TLS) or unix:/path; empty = in-memory only
  std::string redis_username;       ///< Redis 6 ACL user for AUTH; empty = the URL's user, else default
  std::string redis_password_file;  ///< or env AFORO_REDIS_PASSWORD; never inline
  std::string redis_ca_file;  ///< rediss:// only: PEM CAs the server certificate must chain to; empty = system store
  std::string redis_tls_server_name;  ///< rediss:// only: SNI and the certificate name; empty = the URL's host
  std::uint64_t lru_capacity = 100000;
  millis redis_timeout{std::chrono::milliseconds(250)};
  millis sync_interval{std::chrono::seconds(1)};  ///< local quota/cost deltas pushed to Redis
  quota_mode quota =
      quota_mode::reserve;  ///< with redis: reserve quota in chunks (exact) | counters (shared after the fact)
  std::uint32_t quota_max_chunk = 1000;  ///< most units one reservation asks for
  std::uint32_t quota_unreported = 100;  ///< units a sidecar admits beyond what Redis acknowledged, at most
  millis quota_chunk_window{std::chrono::seconds(1)};  ///< a chunk covers this long of a key's local rate
  millis quota_chunk_ttl{std::chrono::seconds(30)};    ///< a sidecar's hold expires this long after its last call
  std::uint32_t quota_redis_down_allowance = 0;  ///< units per key admitted beyond held chunks while Redis is down
  std::uint32_t quota_redis_down_percent = 1;    ///< or this share of the key's limit, whichever is larger
};

struct batch_config {
  std::uint32_t max_events = 100;
  std::uint32_t backlog_events = 1000;  ///< batches grow to this while more than a batch waits
  std::uint32_t max_concurrency = 16;   ///< ingest requests in flight at most (1: one at a time)
  bool adaptive_concurrency = true;     ///< learn the limit (AIMD) up to max_concurrency; false: always max
  millis flush_interval{std::chrono::seconds(5)};
  compression codec = compression::lz4;
  millis compression_retry{std::chrono::minutes(10)};  ///< after ingest refused lz4: try it again this long after
};

struct retry_config {
  std::uint32_t max_retries = 3;
  std::vector<millis> backoff{std::chrono::seconds(1), std::chrono::seconds(2), std::chrono::seconds(4)};
  std::uint32_t jitter_percent = 10;                    ///< each wait is stretched by up to this share
  millis timeout{std::chrono::seconds(10)};             ///< one ingest request, connect to last byte
  millis unauthorized_probe{std::chrono::seconds(60)};  ///< re-probe after 401/403
};

struct buffer_config {
  std::uint64_t max_events = 10000;  ///< memory buffer before spilling to disk
  std::string spool_dir = "/tmp/aforo-buffer";
  std::uint64_t spool_max_bytes = 1 * GiB;
  std::uint64_t segment_bytes = 16 * MiB;  ///< a spool segment file is rotated past this
  when_full_policy when_full = when_full_policy::reject;
  durability_mode durability = durability_mode::disk;
  fsync_mode fsync = fsync_mode::always;            ///< when an acknowledged batch reaches stable storage
  millis fsync_interval{std::chrono::seconds(1)};   ///< fsync interval: the power-loss window
  std::string dead_letter_dir;                      ///< empty = {spool_dir}/dead-letter
  std::uint64_t dead_letter_max_bytes = 256 * MiB;  ///< the dead-letter file and its 3 rotations together
};

struct margin_guard_config {
  std::string config;               ///< guards YAML path; empty = no guard
  std::string webhook_secret_file;  ///< or env AFORO_WEBHOOK_SECRET
  millis reload_interval{std::chrono::seconds(10)};
};

struct discovery_config {
  bool enabled = true;
  std::string kong_admin_url = "http://localhost:8001";
  std::string admin_token_file;  ///< sent as Kong-Admin-Token when set
  millis interval{std::chrono::seconds(60)};
  std::string state_dir = "/tmp/aforo-state";
  millis stale_after{std::chrono::hours(24)};
  std::uint32_t max_operations_per_service = 500;
};

struct log_config {
  log_level level = log_level::info;
};

/// The whole file. Secrets are not stored here: see secrets.hpp.
struct sidecar_config {
  std::vector<std::string> listen{"127.0.0.1:8750"};
  enforcement_mode mode = enforcement_mode::enforce;
  server_config server;
  aforo_section aforo;
  entitlements_config entitlements;
  cache_config cache;
  batch_config batch;
  retry_config retry;
  buffer_config buffer;
  margin_guard_config margin_guard;
  discovery_config discovery;
  log_config log;
};

}  // namespace aforo::config
