// Config loading: defaults, units, every kind of invalid input, the reference file, reload merging.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>

#include "config/loader.hpp"
#include "config/secrets.hpp"
#include "config/units.hpp"

using namespace aforo::config;
using namespace std::chrono_literals;

namespace {
bool has_error(const load_result& r, const std::string& needle) {
  for (const auto& e : r.errors)
    if (e.find(needle) != std::string::npos) return true;
  return false;
}
std::string errors_of(const load_result& r);
struct marker_visitor {
  const std::string& doc;
  std::vector<std::string> problems;
  void check(std::string_view key, reload r) {
    // Each level of "a.b.c" is looked for after its parent, two more spaces in.
    std::size_t from = 0;
    std::string indent;
    std::string_view rest = key;
    std::size_t pos = std::string::npos;
    while (true) {
      const auto dot = rest.find('.');
      const std::string part(rest.substr(0, dot));
      pos = doc.find("\n" + indent + part + ":", from);
      if (pos == std::string::npos || dot == std::string_view::npos) break;
      from = pos + 1;
      indent += "  ";
      rest = rest.substr(dot + 1);
    }
    if (pos == std::string::npos) {
      problems.push_back(std::string(key) + " is not documented");
      return;
    }
    const auto eol = doc.find('\n', pos + 1);
    const auto line = doc.substr(pos, eol - pos);
    const bool marked = line.find("(restart)") != std::string::npos;
    if (marked != (r == reload::restart)) problems.push_back(std::string(key) + " restart marker is wrong");
    if (line.find('#') == std::string::npos) problems.push_back(std::string(key) + " has no comment");
  }
  template <class T>
  void text(std::string_view k, const T&, reload r) {
    check(k, r);
  }
  template <class T>
  void texts(std::string_view k, const T&, reload r) {
    check(k, r);
  }
  template <class T>
  void boolean(std::string_view k, const T&, reload r) {
    check(k, r);
  }
  template <class T>
  void count(std::string_view k, const T&, reload r) {
    check(k, r);
  }
  template <class T>
  void percent(std::string_view k, const T&, reload r) {
    check(k, r);
  }
  template <class T>
  void octal(std::string_view k, const T&, reload r) {
    check(k, r);
  }
  template <class T>
  void size(std::string_view k, const T&, reload r) {
    check(k, r);
  }
  template <class T>
  void duration(std::string_view k, const T&, reload r) {
    check(k, r);
  }
  template <class T>
  void durations(std::string_view k, const T&, reload r) {
    check(k, r);
  }
  template <class T, class O>
  void choice(std::string_view k, const T&, O, reload r) {
    check(k, r);
  }
};

std::string errors_of(const load_result& r) {
  std::string s;
  for (const auto& e : r.errors) s += e + "\n";
  return s;
}
}  // namespace

TEST_CASE("config: an empty document is valid and equals the built-in defaults", "[config]") {
  const auto r = load_config_text("");
  REQUIRE(r.ok());
  CHECK(flatten(r.config) == flatten(sidecar_config{}));
  CHECK(r.config.listen == std::vector<std::string>{"127.0.0.1:8750"});
  CHECK(r.config.batch.max_events == 100);
  CHECK(r.config.retry.backoff == std::vector<millis>{1s, 2s, 4s});
  CHECK(r.config.buffer.spool_max_bytes == 1 * GiB);
}

TEST_CASE("config: the annotated reference config/sidecar.yaml equals the built-in defaults", "[config]") {
  const auto r = load_config_file(std::string(AFORO_SOURCE_DIR) + "/config/sidecar.yaml");
  INFO(errors_of(r));
  REQUIRE(r.ok());
  const auto got = flatten(r.config);
  const auto want = flatten(sidecar_config{});
  for (const auto& [k, v] : want) {
    INFO(k);
    REQUIRE(got.count(k) == 1);
    CHECK(got.at(k) == v);
  }
}

TEST_CASE("config: the reference file documents every key and marks exactly the restart-only ones", "[config]") {
  std::ifstream in(std::string(AFORO_SOURCE_DIR) + "/config/sidecar.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  marker_visitor v{text, {}};
  const sidecar_config c;
  visit_config(c, v);
  std::string all;
  for (const auto& p : v.problems) all += p + "\n";
  INFO(all);
  CHECK(v.problems.empty());
}

TEST_CASE("config: the newcomer's dev config is valid", "[config]") {
  const auto r = load_config_file(std::string(AFORO_SOURCE_DIR) + "/config/sidecar.dev.yaml");
  INFO(errors_of(r));
  CHECK(r.ok());
  CHECK(r.config.cache.redis.empty());
  CHECK(r.config.entitlements.file_path() == "config/snapshot.example.yaml");
}

TEST_CASE("config: values with units are parsed", "[config][units]") {
  const auto r = load_config_text(R"(
server: { max_body: 64KiB, read_timeout: 250ms, shutdown_timeout: 2m, socket_mode: "0600" }
buffer: { spool_max_bytes: 10MB, segment_bytes: 1MiB }
retry: { backoff: [100ms, 1.5s], jitter: 0% }
entitlements: { quota_warning: 90%, max_stale: 1h }
)");
  INFO(errors_of(r));
  REQUIRE(r.ok());
  CHECK(r.config.server.max_body == 64 * KiB);
  CHECK(r.config.server.read_timeout == 250ms);
  CHECK(r.config.server.shutdown_timeout == 2min);
  CHECK(r.config.server.socket_mode == 0600);
  CHECK(r.config.buffer.spool_max_bytes == 10'000'000);
  CHECK(r.config.retry.backoff == std::vector<millis>{100ms, 1500ms});
  CHECK(r.config.retry.jitter_percent == 0);
  CHECK(r.config.entitlements.quota_warning_percent == 90);
  CHECK(r.config.entitlements.max_stale == 1h);
}

TEST_CASE("config: a bare number where a unit is required is an error", "[config][units]") {
  CHECK_FALSE(parse_duration("5").value);
  CHECK(parse_duration("5").error.find("no unit") != std::string::npos);
  CHECK_FALSE(parse_size("1024").value);
  CHECK_FALSE(parse_percent("80").value);
  const auto r = load_config_text("batch: { flush_interval: 5 }\nbuffer: { spool_max_bytes: 1073741824 }\n");
  CHECK(has_error(r, "batch.flush_interval: '5' has no unit"));
  CHECK(has_error(r, "buffer.spool_max_bytes: '1073741824' has no unit"));
}

TEST_CASE("config: unit parsing rejects junk and formats back", "[config][units]") {
  CHECK_FALSE(parse_duration("5 parsecs").value);
  CHECK_FALSE(parse_duration("s").value);
  CHECK_FALSE(parse_duration("1.2.3s").value);
  CHECK_FALSE(parse_duration("0.1ms").value);
  CHECK_FALSE(parse_size("1.5B").value);
  CHECK_FALSE(parse_size("12QB").value);
  CHECK_FALSE(parse_percent("101%").value);
  CHECK_FALSE(parse_percent("50.5%").value);
  CHECK_FALSE(parse_count("-1").value);
  CHECK_FALSE(parse_count("12abc").value);
  CHECK(*parse_rate_per_second("5/s").value == Approx(5.0));
  CHECK(*parse_rate_per_second("300/m").value == Approx(5.0));
  CHECK_FALSE(parse_rate_per_second("5").value);
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_duration(120s) == "2m");
  CHECK(format_size(16 * MiB) == "16MiB");
  CHECK(format_size(1000) == "1000B");
}

TEST_CASE("config: unknown keys are rejected with their full path", "[config]") {
  const auto r = load_config_text("colour: blue\nbatch: { max_event: 5 }\nbuffer: { spool: { dir: x } }\n");
  CHECK(has_error(r, "colour: unknown key"));
  CHECK(has_error(r, "batch.max_event: unknown key"));
  CHECK(has_error(r, "buffer.spool: unknown key"));
}

TEST_CASE("config: an inline API key is refused and its value never echoed", "[config][secrets]") {
  const auto r = load_config_text("aforo: { api_key: sk_live_supersecret123 }\n");
  REQUIRE_FALSE(r.ok());
  CHECK(has_error(r, "aforo.api_key: API keys are never written in the config file"));
  CHECK_FALSE(has_error(r, "supersecret"));
}

TEST_CASE("config: every problem is reported at once", "[config]") {
  const auto r = load_config_text(R"(
mode: enforcing
batch: { max_events: 5000, compression: gzip }
buffer: { when_full: block, max_events: lots }
retry: { backoff: 1s }
listen: ["127.0.0.1"]
log: { level: verbose }
discovery: { enabled: yes }
server: { socket_mode: "0999", max_body: { a: 1 } }
)");
  INFO(errors_of(r));
  CHECK(has_error(r, "mode: 'enforcing' must be one of enforce, shadow"));
  CHECK(has_error(r, "batch.compression: 'gzip' must be one of lz4, none"));
  CHECK(has_error(r, "buffer.when_full: 'block' must be one of drop_oldest, reject"));
  CHECK(has_error(r, "buffer.max_events: 'lots' is not a whole number"));
  CHECK(has_error(r, "retry.backoff: must be a list of durations"));
  CHECK(has_error(r, "log.level: 'verbose' must be one of debug, info, warn, error"));
  CHECK(has_error(r, "discovery.enabled: 'yes' must be true or false"));
  CHECK(has_error(r, "server.socket_mode: '0999' must be an octal file mode"));
  CHECK(has_error(r, "server.max_body: must be a single value"));
  CHECK(r.errors.size() == 9);
}

TEST_CASE("config: cross-key validation names the key", "[config]") {
  const auto r = load_config_text(R"(
listen: ["127.0.0.1", "unix:relative.sock", "127.0.0.1:99999"]
batch: { max_events: 5000 }
aforo: { ingest_url: "ftp://x" }
entitlements: { source: "s3:bucket" }
cache: { redis: "localhost:6379" }
buffer: { spool_max_bytes: 1MiB, segment_bytes: 16MiB }
retry: { backoff: [] }
server: { ingest_thread_nice: 20 }
)");
  INFO(errors_of(r));
  CHECK(has_error(r, "server.ingest_thread_nice: must be from 0 to 19"));
  CHECK(has_error(r, "listen[0]: '127.0.0.1' must be HOST:PORT"));
  CHECK(has_error(r, "listen[1]"));
  CHECK(has_error(r, "listen[2]"));
  CHECK(has_error(r, "batch.max_events: must be from 1 to 1000"));
  CHECK(has_error(r, "aforo.ingest_url"));
  CHECK(has_error(r, "entitlements.source"));
  CHECK(has_error(r, "cache.redis"));
  CHECK(has_error(r, "buffer.spool_max_bytes: must be at least buffer.segment_bytes"));
  CHECK(has_error(r, "retry.backoff: needs at least one duration"));
}

TEST_CASE("config: batch.max_concurrency and batch.backlog_events are checked against their ranges", "[config]") {
  // The bounds themselves are taken.
  for (const char* ok : {"batch: { max_concurrency: 1, backlog_events: 1 }\n",
                         "batch: { max_concurrency: 64, backlog_events: 1000, adaptive_concurrency: false }\n"}) {
    const auto r = load_config_text(ok);
    INFO(ok << errors_of(r));
    CHECK(r.ok());
  }
  const auto low = load_config_text("batch: { max_concurrency: 0, backlog_events: 0 }\n");
  INFO(errors_of(low));
  CHECK(has_error(low, "batch.max_concurrency: must be from 1 to 64 (requests in flight to ingest)"));
  CHECK(has_error(low, "batch.backlog_events: must be from 1 to 1000 (Aforo's limit per request)"));
  CHECK(low.errors.size() == 2);
  const auto high = load_config_text("batch: { max_concurrency: 65, backlog_events: 1001 }\n");
  INFO(errors_of(high));
  CHECK(has_error(high, "batch.max_concurrency: must be from 1 to 64 (requests in flight to ingest)"));
  CHECK(has_error(high, "batch.backlog_events: must be from 1 to 1000 (Aforo's limit per request)"));
  CHECK(high.errors.size() == 2);
  CHECK(has_error(load_config_text("batch: { adaptive_concurrency: sometimes }\n"), "batch.adaptive_concurrency"));
}

TEST_CASE("config: quota reservation knobs are checked", "[config]") {
  const auto ok = load_config_text(
      "cache: { quota_mode: counters, quota_max_chunk: 50, quota_chunk_window: 500ms, quota_chunk_ttl: 10s,"
      " quota_redis_down_allowance: 7, quota_unreported: 25 }\n");
  INFO(errors_of(ok));
  REQUIRE(ok.ok());
  CHECK(ok.config.cache.quota == aforo::config::quota_mode::counters);
  CHECK(ok.config.cache.quota_max_chunk == 50);
  CHECK(ok.config.cache.quota_chunk_window == std::chrono::milliseconds(500));
  CHECK(ok.config.cache.quota_chunk_ttl == std::chrono::seconds(10));
  CHECK(ok.config.cache.quota_redis_down_allowance == 7);
  CHECK(ok.config.cache.quota_unreported == 25);
  const auto r = load_config_text(
      "cache: { quota_max_chunk: 0, quota_chunk_window: 0ms, quota_chunk_ttl: 500ms, quota_unreported: 0 }\n");
  INFO(errors_of(r));
  CHECK(has_error(load_config_text("cache: { quota_mode: exact }\n"), "cache.quota_mode: 'exact' must be one of"));
  CHECK(has_error(r, "cache.quota_max_chunk: must be from 1 to 1000000"));
  CHECK(has_error(r, "cache.quota_unreported: must be from 1 to 1000000"));
  CHECK(has_error(r, "cache.quota_chunk_window: must be more than 0ms"));
  CHECK(has_error(r, "cache.quota_chunk_ttl: must be at least 1s and more than 4 x cache.redis_timeout"));
  CHECK(has_error(load_config_text("cache: { quota_chunk_ttl: 1s, redis_timeout: 300ms }\n"), "cache.quota_chunk_ttl"));
}

TEST_CASE("config: YAML syntax errors give a line and column", "[config]") {
  const auto r = load_config_text("batch:\n  max_events: [1, 2\n");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].rfind("line ", 0) == 0);
  CHECK(has_error(load_config_text("- a\n- b\n"), "must be a YAML map"));
}

TEST_CASE("config: an unreadable file is one clear error", "[config]") {
  const auto r = load_config_file("/nonexistent/aforo.yaml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0] == "/nonexistent/aforo.yaml: cannot read the config file");
}

TEST_CASE("config: reload applies live keys and keeps restart-only keys", "[config][reload]") {
  sidecar_config running;
  auto next = load_config_text(
                  "log: { level: debug }\nbatch: { max_events: 10 }\nbuffer: { spool_dir: /elsewhere }\n"
                  "listen: [\"127.0.0.1:9999\"]\n")
                  .config;
  const auto changes = diff(running, next);
  REQUIRE(changes.size() == 4);
  int live = 0, restart = 0;
  for (const auto& c : changes) (c.when == reload::live ? live : restart)++;
  CHECK(live == 2);
  CHECK(restart == 2);
  const auto merged = merge_live(running, next);
  CHECK(merged.log.level == log_level::debug);
  CHECK(merged.batch.max_events == 10);
  CHECK(merged.buffer.spool_dir == "/tmp/aforo-buffer");
  CHECK(merged.listen == std::vector<std::string>{"127.0.0.1:8750"});
}

TEST_CASE("secrets: the environment wins over the file and values are redacted", "[config][secrets]") {
  const std::string path = "/tmp/aforo-unit-secret-key";
  { std::ofstream(path) << "sk_live_fromfile_abcd\n"; }
  sidecar_config c;
  c.aforo.api_key_file = path;
  c.aforo.tenant_id = "tenant_cfg";
  ::unsetenv("AFORO_API_KEY");
  ::unsetenv("AFORO_TENANT_ID");
  std::vector<std::string> errors;
  auto s = load_secrets(c, errors);
  CHECK(errors.empty());
  CHECK(s.api_key == "sk_live_fromfile_abcd");
  CHECK(s.tenant_id == "tenant_cfg");
  ::setenv("AFORO_API_KEY", "sk_live_fromenv_wxyz", 1);
  ::setenv("AFORO_TENANT_ID", "tenant_env", 1);
  s = load_secrets(c, errors);
  CHECK(s.api_key == "sk_live_fromenv_wxyz");
  CHECK(s.tenant_id == "tenant_env");
  ::unsetenv("AFORO_API_KEY");
  ::unsetenv("AFORO_TENANT_ID");
  CHECK(redact("sk_live_fromenv_wxyz") == "…wxyz");
  CHECK(redact("short") == "…");
  CHECK(redact("") == "(none)");
  c.aforo.api_key_file = "/nonexistent/key";
  errors.clear();
  load_secrets(c, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "aforo.api_key_file: cannot read the secret file /nonexistent/key");
  std::remove(path.c_str());
}

TEST_CASE("secrets: the Redis password comes from the env or cache.redis_password_file", "[config][secrets]") {
  const std::string path = "/tmp/aforo-unit-redis-password";
  { std::ofstream(path) << "redis-pw-from-file\n"; }
  sidecar_config c;
  c.cache.redis_password_file = path;
  ::unsetenv("AFORO_REDIS_PASSWORD");
  std::vector<std::string> errors;
  CHECK(load_secrets(c, errors).redis_password == "redis-pw-from-file");
  ::setenv("AFORO_REDIS_PASSWORD", "redis-pw-from-env", 1);
  CHECK(load_secrets(c, errors).redis_password == "redis-pw-from-env");
  ::unsetenv("AFORO_REDIS_PASSWORD");
  CHECK(errors.empty());
  c.cache.redis_password_file = "/nonexistent/redis";
  load_secrets(c, errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "cache.redis_password_file: cannot read the secret file /nonexistent/redis");
  std::remove(path.c_str());
}

TEST_CASE("secrets: a URL's inline password is redacted and warned about", "[config][secrets]") {
  CHECK(redact_url("redis://:hunter2@redis.internal:6379/0") == "redis://:****@redis.internal:6379/0");
  CHECK(redact_url("redis://user:hunter2@10.0.0.1/2") == "redis://user:****@10.0.0.1/2");
  CHECK(redact_url("redis://user@10.0.0.1/2") == "redis://user@10.0.0.1/2");
  CHECK(redact_url("redis://10.0.0.1:6379/0") == "redis://10.0.0.1:6379/0");
  CHECK(redact_url("unix:/run/redis.sock?db=1") == "unix:/run/redis.sock?db=1");
  CHECK(redact_url("redis://u:p@ss@host/0") == "redis://u:****@host/0");
  CHECK(url_has_password("redis://:x@h/0"));
  CHECK_FALSE(url_has_password("redis://u@h/0"));

  sidecar_config c;
  CHECK(warnings(c).empty());
  c.cache.redis = "redis://:hunter2@redis.internal:6379/0";
  const auto w = warnings(c);
  REQUIRE(w.size() == 1);
  CHECK(w[0].find("redis://:****@redis.internal") != std::string::npos);
  CHECK(w[0].find("hunter2") == std::string::npos);
  // A malformed URL is refused without echoing its password either.
  auto r = load_config_text("cache: { redis: \"http://:hunter2@h/0\" }\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.errors[0].find("hunter2") == std::string::npos);
}

TEST_CASE("config: cache.redis accepts rediss:// with a CA file and a server name", "[config][redis]") {
  auto r = load_config_text(R"(
cache:
  redis: "rediss://redis.example.net:6380/0"
  redis_ca_file: /etc/aforo/redis-ca.pem
  redis_tls_server_name: redis.internal.example.net
)");
  INFO(errors_of(r));
  REQUIRE(r.ok());
  CHECK(r.config.cache.redis == "rediss://redis.example.net:6380/0");
  CHECK(r.config.cache.redis_ca_file == "/etc/aforo/redis-ca.pem");
  CHECK(r.config.cache.redis_tls_server_name == "redis.internal.example.net");
  CHECK(load_config_text("cache: { redis: \"rediss://10.0.0.5:6379/1\" }\n").ok());  // the system store
  CHECK(load_config_text("cache: { redis: \"rediss://h/0\", redis_tls_server_name: \"10.0.0.5\" }\n").ok());
  CHECK(load_config_text("cache: { redis: \"rediss://h/0\", redis_tls_server_name: \"::1\" }\n").ok());
  // A password inline in a rediss:// URL is warned about and redacted like in redis://.
  r = load_config_text("cache: { redis: \"rediss://:hunter2@h:6380/0\" }\n");
  REQUIRE(r.ok());
  const auto w = warnings(r.config);
  REQUIRE(w.size() == 1);
  CHECK(w[0].find("rediss://:****@h:6380/0") != std::string::npos);
  CHECK(w[0].find("hunter2") == std::string::npos);
}

TEST_CASE("config: the Redis TLS keys without rediss:// and a malformed server name are refused", "[config][redis]") {
  auto r = load_config_text(R"(
cache:
  redis: "redis://127.0.0.1:6379/0"
  redis_ca_file: /etc/aforo/redis-ca.pem
  redis_tls_server_name: redis.internal
)");
  INFO(errors_of(r));
  CHECK(has_error(r, "cache.redis_ca_file: applies to TLS only: cache.redis must be a rediss:// URL"));
  CHECK(has_error(r, "cache.redis_tls_server_name: applies to TLS only"));
  r = load_config_text("cache: { redis_ca_file: /ca.pem }\n");  // no Redis at all
  CHECK(has_error(r, "cache.redis_ca_file: applies to TLS only"));
  r = load_config_text("cache: { redis: \"rediss://h/0\", redis_tls_server_name: \"https://h/\" }\n");
  CHECK(has_error(r, "cache.redis_tls_server_name: 'https://h/' must be a host name or an IP address"));
  r = load_config_text("cache: { redis: \"redis+tls://h/0\" }\n");
  CHECK(
      has_error(r, "cache.redis: 'redis+tls://h/0' must look like redis://host:port/db, rediss://host:port/db (TLS)"));
}

TEST_CASE("config: batch.compression_retry defaults to 10 minutes and must be at least 1s", "[config]") {
  using namespace std::chrono_literals;
  CHECK(load_config_text("").config.batch.compression_retry == 10min);
  CHECK(load_config_text("batch: { compression_retry: 30s }\n").config.batch.compression_retry == 30s);
  CHECK(has_error(load_config_text("batch: { compression_retry: 500ms }\n"),
                  "batch.compression_retry: must be at least 1s"));
}
