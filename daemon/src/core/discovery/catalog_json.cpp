// The catalog's JSON forms; see catalog_json.hpp.
#include "core/discovery/catalog_json.hpp"

#include <chrono>
#include <cstdio>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/json/bounded_parse.hpp"

namespace aforo::core::discovery {
namespace {

namespace rj = rapidjson;
using writer_t = rj::Writer<rj::StringBuffer>;
constexpr int state_format = 1;

void key(writer_t& w, std::string_view k) { w.Key(k.data(), static_cast<rj::SizeType>(k.size())); }
void string(writer_t& w, std::string_view v) { w.String(v.data(), static_cast<rj::SizeType>(v.size())); }
// A member and its value.
void str_field(writer_t& w, std::string_view k, std::string_view v) {
  key(w, k);
  string(w, v);
}
void bool_field(writer_t& w, std::string_view k, bool v) {
  key(w, k);
  w.Bool(v);
}
void u64_field(writer_t& w, std::string_view k, std::uint64_t v) {
  key(w, k);
  w.Uint64(v);
}
void i64_field(writer_t& w, std::string_view k, std::int64_t v) {
  key(w, k);
  w.Int64(v);
}
void strings(writer_t& w, std::string_view k, const std::vector<std::string>& v) {
  key(w, k);
  w.StartArray();
  for (const auto& s : v) string(w, s);
  w.EndArray();
}
void time_or_null(writer_t& w, std::string_view k, epoch_ms t) {
  key(w, k);
  if (t == 0)
    w.Null();
  else
    string(w, iso8601_ms(t));
}

void routes(writer_t& w, const std::vector<route_info>& rs) {
  key(w, "routes");
  w.StartArray();
  for (const auto& r : rs) {
    w.StartObject();
    str_field(w, "id", r.id);
    str_field(w, "name", r.name);
    strings(w, "paths", r.paths);
    strings(w, "methods", r.methods);
    w.EndObject();
  }
  w.EndArray();
}

// The names the two forms give an API's counters of folded requests and dropped operations.
struct counter_keys {
  std::string_view folded;
  std::string_view dropped;
};

// The "apis" member both forms share: per API its name, service_id and version, then what
// `api_fields` writes, then tags, hosts, plugins, routes and the two counters; per operation its
// method, path and route, then what `operation_fields` writes. The order is part of both formats.
template <class ApiFields, class OperationFields>
void apis(writer_t& w, const catalog& c, counter_keys counters, ApiFields api_fields,
          OperationFields operation_fields) {
  key(w, "apis");
  w.StartArray();
  for (const auto& [name, a] : c.apis()) {
    w.StartObject();
    str_field(w, "name", a.name);
    str_field(w, "service_id", a.service_id);
    u64_field(w, "version", a.version);
    api_fields(a);
    strings(w, "tags", a.tags);
    strings(w, "hosts", a.hosts);
    strings(w, "plugins", a.plugins);
    routes(w, a.routes);
    u64_field(w, counters.folded, a.folded);
    u64_field(w, counters.dropped, a.dropped);
    key(w, "operations");
    w.StartArray();
    for (const auto& [k, op] : a.operations) {
      w.StartObject();
      str_field(w, "method", op.method);
      str_field(w, "path", op.path);
      str_field(w, "route", op.route);
      operation_fields(op);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

// ---- parsing the state file ----

struct reader {
  std::string error;
  bool fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  const rj::Value* member(const rj::Value& o, const char* k) {
    auto it = o.FindMember(k);
    return it == o.MemberEnd() ? nullptr : &it->value;
  }
  bool get(const rj::Value& o, const char* k, std::string& out) {
    const auto* v = member(o, k);
    if (v == nullptr || !v->IsString()) return fail(std::string("\"") + k + "\" is not a string");
    out.assign(v->GetString(), v->GetStringLength());
    return true;
  }
  bool get(const rj::Value& o, const char* k, std::int64_t& out) {
    const auto* v = member(o, k);
    if (v == nullptr || !v->IsInt64()) return fail(std::string("\"") + k + "\" is not an integer");
    out = v->GetInt64();
    return true;
  }
  bool get(const rj::Value& o, const char* k, std::uint64_t& out) {
    const auto* v = member(o, k);
    if (v == nullptr || !v->IsUint64()) return fail(std::string("\"") + k + "\" is not a count");
    out = v->GetUint64();
    return true;
  }
  bool get(const rj::Value& o, const char* k, bool& out) {
    const auto* v = member(o, k);
    if (v == nullptr || !v->IsBool()) return fail(std::string("\"") + k + "\" is not a boolean");
    out = v->GetBool();
    return true;
  }
  bool get(const rj::Value& o, const char* k, std::vector<std::string>& out) {
    const auto* v = member(o, k);
    if (v == nullptr || !v->IsArray()) return fail(std::string("\"") + k + "\" is not an array");
    for (const auto& s : v->GetArray()) {
      if (!s.IsString()) return fail(std::string("\"") + k + "\" holds a non-string");
      out.emplace_back(s.GetString(), s.GetStringLength());
    }
    return true;
  }
  const rj::Value* array(const rj::Value& o, const char* k) {
    const auto* v = member(o, k);
    if (v == nullptr || !v->IsArray()) {
      fail(std::string("\"") + k + "\" is not an array");
      return nullptr;
    }
    return v;
  }

  bool read_operation(const rj::Value& v, operation& op) {
    return v.IsObject() && get(v, "method", op.method) && get(v, "path", op.path) && get(v, "route", op.route) &&
           get(v, "first_seen_ms", op.first_seen_ms) && get(v, "last_seen_ms", op.last_seen_ms) &&
           get(v, "count", op.count) && get(v, "declared", op.declared) &&
           get(v, "declared_changed_ms", op.declared_changed_ms) && get(v, "changed_ms", op.changed_ms);
  }

  bool read_api(const rj::Value& v, api& a) {
    if (!v.IsObject()) return fail("an API is not an object");
    if (!(get(v, "name", a.name) && get(v, "service_id", a.service_id) && get(v, "version", a.version) &&
          get(v, "first_seen_ms", a.first_seen_ms) && get(v, "version_changed_ms", a.version_changed_ms) &&
          get(v, "declared", a.declared) && get(v, "tags", a.tags) && get(v, "hosts", a.hosts) &&
          get(v, "plugins", a.plugins) && get(v, "folded", a.folded) && get(v, "dropped", a.dropped)))
      return false;
    const auto* rs = array(v, "routes");
    if (rs == nullptr) return false;
    for (const auto& r : rs->GetArray()) {
      route_info ri;
      if (!r.IsObject() || !get(r, "id", ri.id) || !get(r, "name", ri.name) || !get(r, "paths", ri.paths) ||
          !get(r, "methods", ri.methods))
        return fail("a route of API \"" + a.name + "\" is invalid: " + error);
      a.routes.push_back(std::move(ri));
    }
    const auto* ops = array(v, "operations");
    if (ops == nullptr) return false;
    for (const auto& o : ops->GetArray()) {
      operation op;
      if (!read_operation(o, op)) return fail("an operation of API \"" + a.name + "\" is invalid: " + error);
      auto k = std::make_pair(op.path, op.method);
      a.operations.emplace(std::move(k), std::move(op));
    }
    return true;
  }
};

}  // namespace

std::string iso8601_ms(epoch_ms t) {
  using namespace std::chrono;
  const sys_time<milliseconds> tp{milliseconds(t)};
  const auto day = floor<days>(tp);
  const year_month_day ymd{day};
  const hh_mm_ss hms{tp - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  return buf;
}

std::string catalog_view_json(const catalog& c, epoch_ms now, std::string_view tenant_id) {
  rj::StringBuffer sb;
  writer_t w(sb);
  w.StartObject();
  bool_field(w, "enabled", true);
  if (!tenant_id.empty()) str_field(w, "tenant_id", tenant_id);
  u64_field(w, "revision", c.revision());
  str_field(w, "generated_at", iso8601_ms(now));
  i64_field(w, "stale_after_s", c.limits().stale_after_ms / 1000);
  apis(
      w, c, {"folded_requests", "dropped_operations"},
      [&](const api& a) {
        str_field(w, "state", to_string(c.state_of(a, now)));
        time_or_null(w, "first_seen", a.first_seen_ms);
        time_or_null(w, "version_changed_at", a.version_changed_ms);
        bool_field(w, "declared", a.declared);
        bool_field(w, "monetized", a.monetized());
        bool_field(w, "metered", a.metered());
      },
      [&](const operation& op) {
        str_field(w, "source", to_string(op.source()));
        str_field(w, "state", to_string(c.state_of(op, now)));
        bool_field(w, "declared", op.declared);
        time_or_null(w, "first_seen", op.first_seen_ms);
        time_or_null(w, "last_seen", op.last_seen_ms);
        u64_field(w, "count", op.count);
      });
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

std::string disabled_catalog_json() {
  return R"json({"enabled":false,"message":"discovery is disabled (discovery.enabled: false)","revision":0,"apis":[]})json";
}

std::string catalog_state_json(const catalog& c, std::uint64_t pushed_revision) {
  rj::StringBuffer sb;
  writer_t w(sb);
  w.StartObject();
  key(w, "format");
  w.Int(state_format);
  u64_field(w, "revision", c.revision());
  u64_field(w, "pushed_revision", pushed_revision);
  apis(
      w, c, {"folded", "dropped"},
      [&](const api& a) {
        i64_field(w, "first_seen_ms", a.first_seen_ms);
        i64_field(w, "version_changed_ms", a.version_changed_ms);
        bool_field(w, "declared", a.declared);
      },
      [&](const operation& op) {
        i64_field(w, "first_seen_ms", op.first_seen_ms);
        i64_field(w, "last_seen_ms", op.last_seen_ms);
        u64_field(w, "count", op.count);
        bool_field(w, "declared", op.declared);
        i64_field(w, "declared_changed_ms", op.declared_changed_ms);
        i64_field(w, "changed_ms", op.changed_ms);
      });
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

catalog_state parse_catalog_state(std::string_view text) {
  catalog_state out;
  rj::Document doc;
  if (const auto parsed = core::json::parse(doc, text); !parsed) {
    out.error = parsed.too_deep ? parsed.message()
                                : std::string("invalid JSON at offset ") + std::to_string(parsed.result.Offset()) +
                                      ": " + rj::GetParseError_En(parsed.result.Code());
    return out;
  }
  if (!doc.IsObject()) {
    out.error = "not a JSON object";
    return out;
  }
  reader r;
  std::uint64_t format = 0;
  if (!r.get(doc, "format", format) || format != state_format) {
    out.error = r.error.empty() ? "unknown format " + std::to_string(format) : r.error;
    return out;
  }
  std::map<std::string, api> apis;
  std::uint64_t revision = 0;
  std::uint64_t pushed = 0;
  bool ok = r.get(doc, "revision", revision) && r.get(doc, "pushed_revision", pushed);
  const rj::Value* list = ok ? r.array(doc, "apis") : nullptr;
  if (list != nullptr) {
    for (const auto& v : list->GetArray()) {
      api a;
      if (!r.read_api(v, a)) break;
      std::string name = a.name;
      apis.emplace(std::move(name), std::move(a));
    }
  }
  if (!r.error.empty()) {
    out.error = r.error;
    return out;
  }
  out.apis = std::move(apis);
  out.revision = revision;
  out.pushed_revision = pushed;
  return out;
}

}  // namespace aforo::core::discovery
