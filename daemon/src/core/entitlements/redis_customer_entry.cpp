// Customer entries for the Redis edge cache, written with RapidJSON and read back through the
// snapshot parser (one validator for every source).
#include "core/entitlements/redis_customer_entry.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/entitlements/money.hpp"
#include "core/entitlements/period.hpp"
#include "core/entitlements/snapshot_json.hpp"

namespace aforo::core::entitlements {

namespace {
void put(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
}  // namespace

std::string customer_entry_json(const customer& c, std::string_view version) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("version");
  put(w, version);
  w.Key("customers");
  w.StartObject();
  put(w, c.id);
  w.StartObject();
  w.Key("plan");
  put(w, c.plan);
  w.Key("status");
  put(w, to_string(c.status));
  if (c.grace_until) {
    char iso[21];
    w.Key("grace_until");
    put(w, format_iso8601(*c.grace_until, iso));
  }
  w.Key("features");
  w.StartObject();
  for (const auto& [name, fe] : c.features) {
    put(w, name);
    w.StartObject();
    if (fe.limit) {
      w.Key("limit");
      w.Int64(*fe.limit);
    }
    w.Key("period");
    put(w, to_string(fe.period));
    w.EndObject();
  }
  w.EndObject();
  if (c.revenue) {
    w.Key("revenue");
    w.StartObject();
    w.Key("amount");
    const std::string amount = format_micros(c.revenue->amount);
    w.RawValue(amount.data(), amount.size(), rapidjson::kNumberType);
    w.Key("period");
    put(w, to_string(c.revenue->period));
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::optional<customer_entry> parse_customer_entry(std::string_view json) {
  auto r = parse_snapshot_json(json);
  if (!r.ok() || r.value->customers.size() != 1) return std::nullopt;
  auto node = r.value->customers.extract(r.value->customers.begin());
  return customer_entry{std::move(node.mapped()), std::move(r.value->version)};
}

}  // namespace aforo::core::entitlements
