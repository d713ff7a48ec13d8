// YAML config loader and validation; see loader.hpp. Key declarations live in schema.hpp.
#include "config/loader.hpp"

#include <yaml-cpp/depthguard.h>  // YAML::DeepRecursion: yaml-cpp >= 0.7 bounds its recursion
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "config/secrets.hpp"
#include "config/units.hpp"

namespace aforo::config {
namespace {

// Looks a dotted path up without creating nodes (yaml-cpp's non-const operator[] would insert).
YAML::Node find(const YAML::Node& root, std::string_view path) {
  YAML::Node cur;
  cur.reset(root);
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string part(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (!cur.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& ccur = cur;
    YAML::Node next = ccur[part];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    cur.reset(next);
    if (dot == std::string_view::npos) return cur;
    start = dot + 1;
  }
}

class parse_visitor {
 public:
  parse_visitor(const YAML::Node& root, std::vector<std::string>& errors) : root_(root), errors_(errors) {}

  std::set<std::string, std::less<>> known;

  void text(std::string_view key, std::string& out, reload) {
    if (auto n = scalar(key, true)) out = *n;
  }
  void texts(std::string_view key, std::vector<std::string>& out, reload) {
    known.emplace(key);
    const auto n = find(root_, key);
    if (!n.IsDefined()) return;
    std::vector<std::string> v;
    if (n.IsScalar()) {
      v.push_back(n.Scalar());
    } else if (n.IsSequence()) {
      for (std::size_t i = 0; i < n.size(); ++i) {
        if (!n[i].IsScalar()) return fail(key, "every entry must be a string");
        v.push_back(n[i].Scalar());
      }
    } else {
      return fail(key, "must be a string or a list of strings");
    }
    out = std::move(v);
  }
  void boolean(std::string_view key, bool& out, reload) {
    if (auto n = scalar(key)) {
      if (*n == "true")
        out = true;
      else if (*n == "false")
        out = false;
      else
        fail(key, "'" + *n + "' must be true or false");
    }
  }
  template <class T>
  void count(std::string_view key, T& out, reload) {
    if (auto n = scalar(key)) {
      auto p = parse_count(*n);
      if (!p.value) return fail(key, p.error);
      if (*p.value > std::numeric_limits<T>::max()) return fail(key, "'" + *n + "' is too large");
      out = static_cast<T>(*p.value);
    }
  }
  void percent(std::string_view key, std::uint32_t& out, reload) {
    if (auto n = scalar(key)) {
      auto p = parse_percent(*n);
      if (!p.value) return fail(key, p.error);
      out = *p.value;
    }
  }
  void octal(std::string_view key, std::uint32_t& out, reload) {
    if (auto n = scalar(key)) {
      const std::string& s = *n;
      bool okv = !s.empty() && s.size() <= 4;
      std::uint32_t v = 0;
      for (char ch : s) {
        if (ch < '0' || ch > '7')
          okv = false;
        else
          v = v * 8 + static_cast<std::uint32_t>(ch - '0');
      }
      if (!okv) return fail(key, "'" + s + "' must be an octal file mode written as a string, e.g. \"0660\"");
      out = v;
    }
  }
  void size(std::string_view key, std::uint64_t& out, reload) {
    if (auto n = scalar(key)) {
      auto p = parse_size(*n);
      if (!p.value) return fail(key, p.error);
      out = *p.value;
    }
  }
  void duration(std::string_view key, millis& out, reload) {
    if (auto n = scalar(key)) {
      auto p = parse_duration(*n);
      if (!p.value) return fail(key, p.error);
      out = *p.value;
    }
  }
  void durations(std::string_view key, std::vector<millis>& out, reload) {
    known.emplace(key);
    const auto n = find(root_, key);
    if (!n.IsDefined()) return;
    if (!n.IsSequence()) return fail(key, "must be a list of durations, e.g. [1s, 2s, 4s]");
    std::vector<millis> v;
    for (std::size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsScalar()) return fail(key, "every entry must be a duration");
      auto p = parse_duration(n[i].Scalar());
      if (!p.value) return fail(std::string(key) + "[" + std::to_string(i) + "]", p.error);
      v.push_back(*p.value);
    }
    out = std::move(v);
  }
  template <class E>
  void choice(std::string_view key, E& out, choices<E> options, reload) {
    if (auto n = scalar(key)) {
      std::string names;
      for (const auto& [name, value] : options) {
        if (*n == name) {
          out = value;
          return;
        }
        if (!names.empty()) names += ", ";
        names += name;
      }
      fail(key, "'" + *n + "' must be one of " + names);
    }
  }

  void fail(std::string_view key, const std::string& what) { errors_.push_back(std::string(key) + ": " + what); }

 private:
  std::optional<std::string> scalar(std::string_view key, bool allow_null = false) {
    known.emplace(key);
    const auto n = find(root_, key);
    if (!n.IsDefined()) return std::nullopt;
    if (n.IsNull()) {
      if (allow_null) return std::string{};
      fail(key, "needs a value");
      return std::nullopt;
    }
    if (!n.IsScalar()) {
      fail(key, "must be a single value, not a list or a map");
      return std::nullopt;
    }
    return n.Scalar();
  }

  const YAML::Node& root_;
  std::vector<std::string>& errors_;
};

void check_unknown(const YAML::Node& node, const std::string& prefix, const std::set<std::string, std::less<>>& known,
                   std::vector<std::string>& errors) {
  for (const auto& kv : node) {
    const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    if (known.count(path)) continue;
    if (path == "aforo.api_key" || path == "api_key") {
      errors.push_back(path +
                       ": API keys are never written in the config file; set the AFORO_API_KEY "
                       "environment variable or aforo.api_key_file");
      continue;
    }
    bool is_section = false;
    for (const auto& k : known) {
      if (k.size() > path.size() && k.compare(0, path.size(), path) == 0 && k[path.size()] == '.') {
        is_section = true;
        break;
      }
    }
    if (!is_section) {
      errors.push_back(path + ": unknown key");
    } else if (!kv.second.IsMap()) {
      if (!kv.second.IsNull()) errors.push_back(path + ": must be a map of settings");
    } else {
      check_unknown(kv.second, path, known, errors);
    }
  }
}

class flatten_visitor {
 public:
  std::map<std::string, std::string> out;
  std::map<std::string, reload> when;

  void text(std::string_view k, const std::string& v, reload r) { put(k, "\"" + v + "\"", r); }
  void texts(std::string_view k, const std::vector<std::string>& v, reload r) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", \"" : "\"") + v[i] + "\"";
    put(k, s + "]", r);
  }
  void boolean(std::string_view k, bool v, reload r) { put(k, v ? "true" : "false", r); }
  template <class T>
  void count(std::string_view k, T v, reload r) {
    put(k, std::to_string(v), r);
  }
  void percent(std::string_view k, std::uint32_t v, reload r) { put(k, std::to_string(v) + "%", r); }
  void octal(std::string_view k, std::uint32_t v, reload r) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\"%04o\"", v);
    put(k, buf, r);
  }
  void size(std::string_view k, std::uint64_t v, reload r) { put(k, format_size(v), r); }
  void duration(std::string_view k, millis v, reload r) { put(k, format_duration(v), r); }
  void durations(std::string_view k, const std::vector<millis>& v, reload r) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + format_duration(v[i]);
    put(k, s + "]", r);
  }
  template <class E>
  void choice(std::string_view k, E v, choices<E> options, reload r) {
    for (const auto& [name, value] : options)
      if (value == v) return put(k, std::string(name), r);
    put(k, "?", r);
  }

 private:
  void put(std::string_view k, std::string v, reload r) {
    out.emplace(std::string(k), std::move(v));
    when.emplace(std::string(k), r);
  }
};

bool valid_listen(const std::string& a) {
  if (a.rfind("unix:", 0) == 0) return a.size() > 6 && a[5] == '/';
  const auto colon = a.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == a.size()) return false;
  for (std::size_t i = colon + 1; i < a.size(); ++i)
    if (a[i] < '0' || a[i] > '9') return false;
  return std::stoul(a.substr(colon + 1, 6)) <= 65535;
}

bool http_url(const std::string& u) { return u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0; }

}  // namespace

load_result load_config_text(std::string_view yaml) {
  load_result r;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::DeepRecursion& e) {  // yaml-cpp's own bound (500 levels; see snapshot_yaml.cpp)
    r.errors.push_back("line " + std::to_string(e.mark.line + 1) + ": YAML nested too deeply");
    return r;
  } catch (const YAML::Exception& e) {
    r.errors.push_back("line " + std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1) +
                       ": " + e.msg);
    return r;
  }
  if (root.IsNull() || !root.IsDefined()) return r;
  if (!root.IsMap()) {
    r.errors.push_back("the config must be a YAML map of sections (listen, aforo, buffer, ...)");
    return r;
  }
  parse_visitor v(root, r.errors);
  visit_config(r.config, v);
  check_unknown(root, "", v.known, r.errors);
  if (r.errors.empty()) validate(r.config, r.errors);
  return r;
}

load_result load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    load_result r;
    r.errors.push_back(path + ": cannot read the config file");
    return r;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return load_config_text(ss.str());
}

void validate(const sidecar_config& c, std::vector<std::string>& errors) {
  auto fail = [&](const std::string& k, const std::string& m) { errors.push_back(k + ": " + m); };
  if (c.listen.empty()) fail("listen", "at least one address is needed, e.g. \"127.0.0.1:8750\"");
  for (std::size_t i = 0; i < c.listen.size(); ++i)
    if (!valid_listen(c.listen[i]))
      fail("listen[" + std::to_string(i) + "]", "'" + c.listen[i] + "' must be HOST:PORT or unix:/absolute/path");
  if (c.server.max_body < 1024) fail("server.max_body", "must be at least 1KiB");
  if (c.server.max_header < 1024) fail("server.max_header", "must be at least 1KiB");
  if (c.server.read_timeout.count() <= 0) fail("server.read_timeout", "must be more than 0ms");
  if (c.server.max_connections < 1 || c.server.max_connections > 1000000)
    fail("server.max_connections", "must be from 1 to 1000000");
  if (c.server.max_batch_events < 1 || c.server.max_batch_events > 100000)
    fail("server.max_batch_events", "must be from 1 to 100000");
  if (c.server.ingest_thread_nice > 19) fail("server.ingest_thread_nice", "must be from 0 to 19");
  if (!http_url(c.aforo.ingest_url))
    fail("aforo.ingest_url", "'" + c.aforo.ingest_url + "' must be an http:// or https:// URL");
  if (!http_url(c.aforo.control_url))
    fail("aforo.control_url", "'" + c.aforo.control_url + "' must be an http:// or https:// URL");
  if (c.entitlements.source != "control_plane" && c.entitlements.source != "aforo_api" &&
      (c.entitlements.source.rfind("file:", 0) != 0 || c.entitlements.source.size() == 5))
    fail("entitlements.source", "'" + c.entitlements.source + "' must be control_plane, file:PATH or aforo_api");
  const auto& api = c.entitlements.aforo_api;
  if (!api.url.empty() && !http_url(api.url))
    fail("entitlements.aforo_api.url", "'" + api.url + "' must be an http:// or https:// URL");
  if (!api.margin_url.empty() && !http_url(api.margin_url))
    fail("entitlements.aforo_api.margin_url", "'" + api.margin_url + "' must be an http:// or https:// URL");
  if (api.fill_missing && c.entitlements.source == "aforo_api")
    fail("entitlements.aforo_api.fill_missing",
         "applies to a snapshot source (control_plane or file:PATH); source aforo_api asks the API for every customer");
  if (c.entitlements.uses_aforo_api() && !api.quota_check && !api.margin_check)
    fail("entitlements.aforo_api", "quota_check and margin_check are both off: nothing to ask");
  if (api.metric.empty() || api.metric.size() > 255)
    fail("entitlements.aforo_api.metric", "must be 1 to 255 characters");
  if (api.quota_ttl.count() < 1) fail("entitlements.aforo_api.quota_ttl", "must be at least 1ms");
  if (api.margin_ttl.count() < 1) fail("entitlements.aforo_api.margin_ttl", "must be at least 1ms");
  if (api.refresh_at < 1 || api.refresh_at > 100) fail("entitlements.aforo_api.refresh_at", "must be from 1% to 100%");
  if (api.timeout.count() < 1) fail("entitlements.aforo_api.timeout", "must be at least 1ms");
  if (api.wait > api.timeout) fail("entitlements.aforo_api.wait", "must not exceed entitlements.aforo_api.timeout");
  if (api.error_retry.count() < 1) fail("entitlements.aforo_api.error_retry", "must be at least 1ms");
  if (api.connections < 1 || api.connections > 64) fail("entitlements.aforo_api.connections", "must be from 1 to 64");
  if (c.entitlements.refresh_interval.count() < 100) fail("entitlements.refresh_interval", "must be at least 100ms");
  if (c.entitlements.lease_requests > 100000)
    fail("entitlements.lease_requests", "must be from 0 (no leases) to 100000");
  if (c.entitlements.lease_ttl.count() < 1 || c.entitlements.lease_ttl > std::chrono::minutes(1))
    fail("entitlements.lease_ttl", "must be from 1ms to 1m");
  if (c.cache.lru_capacity < 1) fail("cache.lru_capacity", "must be at least 1");
  if (c.cache.quota_max_chunk < 1 || c.cache.quota_max_chunk > 1000000)
    fail("cache.quota_max_chunk", "must be from 1 to 1000000");
  if (c.cache.quota_unreported < 1 || c.cache.quota_unreported > 1000000)
    fail("cache.quota_unreported", "must be from 1 to 1000000");
  if (c.cache.quota_chunk_window.count() <= 0) fail("cache.quota_chunk_window", "must be more than 0ms");
  if (c.cache.quota_chunk_ttl < std::chrono::seconds(1) || c.cache.quota_chunk_ttl <= 4 * c.cache.redis_timeout)
    fail("cache.quota_chunk_ttl", "must be at least 1s and more than 4 x cache.redis_timeout");
  const bool redis_tls = c.cache.redis.rfind("rediss://", 0) == 0;
  if (!c.cache.redis.empty() && !redis_tls && c.cache.redis.rfind("redis://", 0) != 0 &&
      c.cache.redis.rfind("unix:", 0) != 0)
    fail("cache.redis", "'" + redact_url(c.cache.redis) +
                            "' must look like redis://host:port/db, rediss://host:port/db (TLS) or unix:/path");
  // TLS settings without rediss:// would leave the operator believing the connection is encrypted.
  if (!redis_tls && !c.cache.redis_ca_file.empty())
    fail("cache.redis_ca_file", "applies to TLS only: cache.redis must be a rediss:// URL");
  if (!redis_tls && !c.cache.redis_tls_server_name.empty())
    fail("cache.redis_tls_server_name", "applies to TLS only: cache.redis must be a rediss:// URL");
  if (c.cache.redis_tls_server_name.find_first_of(" \t/@") != std::string::npos)
    fail("cache.redis_tls_server_name", "'" + c.cache.redis_tls_server_name + "' must be a host name or an IP address");
  if (c.batch.max_events < 1 || c.batch.max_events > 1000)
    fail("batch.max_events", "must be from 1 to 1000 (Aforo's limit per request)");
  if (c.batch.backlog_events < 1 || c.batch.backlog_events > 1000)
    fail("batch.backlog_events", "must be from 1 to 1000 (Aforo's limit per request)");
  if (c.batch.max_concurrency < 1 || c.batch.max_concurrency > 64)
    fail("batch.max_concurrency", "must be from 1 to 64 (requests in flight to ingest)");
  if (c.batch.flush_interval.count() < 1) fail("batch.flush_interval", "must be at least 1ms");
  if (c.batch.compression_retry.count() < 1000) fail("batch.compression_retry", "must be at least 1s");
  if (c.retry.max_retries > 20) fail("retry.max_retries", "must be at most 20");
  if (c.retry.backoff.empty()) fail("retry.backoff", "needs at least one duration, e.g. [1s, 2s, 4s]");
  if (c.retry.timeout.count() < 1) fail("retry.timeout", "must be at least 1ms");
  if (c.buffer.max_events < 1) fail("buffer.max_events", "must be at least 1");
  if (c.buffer.spool_dir.empty()) fail("buffer.spool_dir", "needs a directory");
  if (c.buffer.segment_bytes < 4 * KiB) fail("buffer.segment_bytes", "must be at least 4KiB");
  if (c.buffer.fsync_interval.count() <= 0) fail("buffer.fsync_interval", "must be more than 0");
  if (c.buffer.dead_letter_max_bytes < 64 * KiB) fail("buffer.dead_letter_max_bytes", "must be at least 64KiB");
  if (c.buffer.spool_max_bytes < c.buffer.segment_bytes)
    fail("buffer.spool_max_bytes",
         "must be at least buffer.segment_bytes (" + format_size(c.buffer.segment_bytes) + ")");
  if (c.discovery.enabled && !http_url(c.discovery.kong_admin_url))
    fail("discovery.kong_admin_url", "'" + c.discovery.kong_admin_url + "' must be an http:// or https:// URL");
  if (c.discovery.max_operations_per_service < 1) fail("discovery.max_operations_per_service", "must be at least 1");
}

std::vector<std::string> warnings(const sidecar_config& c) {
  std::vector<std::string> out;
  if (url_has_password(c.cache.redis))
    out.push_back(
        "cache.redis: '" + redact_url(c.cache.redis) +
        "' carries a password inline; secrets belong in cache.redis_password_file or env AFORO_REDIS_PASSWORD");
  return out;
}

std::map<std::string, std::string> flatten(const sidecar_config& c) {
  flatten_visitor v;
  visit_config(c, v);
  return v.out;
}

namespace {

// Two passes over the same key list, in the same order: the first records where each running value
// lives, the second copies restart-only ones into the merged config.
struct address_visitor {
  std::vector<const void*> at;
  template <class T>
  void record(const T& v) {
    at.push_back(&v);
  }
  void text(std::string_view, const std::string& v, reload) { record(v); }
  void texts(std::string_view, const std::vector<std::string>& v, reload) { record(v); }
  void boolean(std::string_view, const bool& v, reload) { record(v); }
  template <class T>
  void count(std::string_view, const T& v, reload) {
    record(v);
  }
  void percent(std::string_view, const std::uint32_t& v, reload) { record(v); }
  void octal(std::string_view, const std::uint32_t& v, reload) { record(v); }
  void size(std::string_view, const std::uint64_t& v, reload) { record(v); }
  void duration(std::string_view, const millis& v, reload) { record(v); }
  void durations(std::string_view, const std::vector<millis>& v, reload) { record(v); }
  template <class E>
  void choice(std::string_view, const E& v, choices<E>, reload) {
    record(v);
  }
};

struct restore_visitor {
  const std::vector<const void*>& from;
  std::size_t i = 0;
  template <class T>
  void restore(T& v, reload r) {
    const auto* src = static_cast<const T*>(from[i++]);
    if (r == reload::restart) v = *src;
  }
  void text(std::string_view, std::string& v, reload r) { restore(v, r); }
  void texts(std::string_view, std::vector<std::string>& v, reload r) { restore(v, r); }
  void boolean(std::string_view, bool& v, reload r) { restore(v, r); }
  template <class T>
  void count(std::string_view, T& v, reload r) {
    restore(v, r);
  }
  void percent(std::string_view, std::uint32_t& v, reload r) { restore(v, r); }
  void octal(std::string_view, std::uint32_t& v, reload r) { restore(v, r); }
  void size(std::string_view, std::uint64_t& v, reload r) { restore(v, r); }
  void duration(std::string_view, millis& v, reload r) { restore(v, r); }
  void durations(std::string_view, std::vector<millis>& v, reload r) { restore(v, r); }
  template <class E>
  void choice(std::string_view, E& v, choices<E>, reload r) {
    restore(v, r);
  }
};

}  // namespace

sidecar_config merge_live(const sidecar_config& running, const sidecar_config& next) {
  address_visitor a;
  visit_config(running, a);
  sidecar_config merged = next;
  restore_visitor b{a.at};
  visit_config(merged, b);
  return merged;
}

std::vector<key_change> diff(const sidecar_config& before, const sidecar_config& after) {
  flatten_visitor a, b;
  visit_config(before, a);
  visit_config(after, b);
  std::vector<key_change> out;
  for (const auto& [k, v] : a.out)
    if (b.out[k] != v) out.push_back({k, a.when[k]});
  return out;
}

}  // namespace aforo::config
