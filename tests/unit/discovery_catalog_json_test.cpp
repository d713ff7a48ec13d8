// Discovery catalog JSON: the served view and the state file, which must round-trip exactly and
// reject anything corrupt as a whole.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include "core/discovery/catalog_json.hpp"

using namespace aforo::core::discovery;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z

catalog sample() {
  catalog c;
  kong_admin_state s;
  s.services.push_back({"svc-1", "search", "h", "http", "", {"aforo:monetized"}, true});
  kong_route r;
  r.id = "route-1";
  r.name = "search-v1";
  r.service_id = "svc-1";
  r.paths = {"/v1/search"};
  r.methods = {"GET"};
  s.routes.push_back(r);
  c.apply_admin(s, t0);
  c.observe({"search", "search-v1", "GET", "/v1/search/x"}, t0 + 5);
  c.observe({"search", "", "DELETE", "/v1/things/42"}, t0 + 6);
  c.seal(t0 + 6);
  return c;
}

}  // namespace

TEST_CASE("discovery json: timestamps are ISO-8601 UTC with milliseconds", "[discovery][json]") {
  CHECK(iso8601_ms(t0) == "2023-11-14T22:13:20.000Z");
  CHECK(iso8601_ms(t0 + 250) == "2023-11-14T22:13:20.250Z");
  CHECK(iso8601_ms(0) == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("discovery json: the view lists APIs, versions, states and operations", "[discovery][json]") {
  const catalog c = sample();
  rapidjson::Document d;
  d.Parse(catalog_view_json(c, t0 + 10, "tenant-1").c_str());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d["enabled"].GetBool());
  CHECK(std::string(d["tenant_id"].GetString()) == "tenant-1");
  CHECK(d["revision"].GetUint64() == 1);
  REQUIRE(d["apis"].Size() == 1);
  const auto& a = d["apis"][0];
  CHECK(std::string(a["name"].GetString()) == "search");
  CHECK(a["version"].GetUint64() == 1);
  CHECK(std::string(a["state"].GetString()) == "NEW");
  CHECK(a["monetized"].GetBool());
  REQUIRE(a["operations"].Size() == 2);
  const auto& first = a["operations"][0];  // by path: /v1/search before /v1/things/{id}
  CHECK(std::string(first["path"].GetString()) == "/v1/search");
  CHECK(std::string(first["source"].GetString()) == "both");
  CHECK(first["count"].GetUint64() == 1);
  const auto& second = a["operations"][1];
  CHECK(std::string(second["path"].GetString()) == "/v1/things/{id}");
  CHECK(std::string(second["source"].GetString()) == "traffic");
  CHECK(std::string(second["state"].GetString()) == "NEW");
  CHECK(std::string(second["last_seen"].GetString()) == "2023-11-14T22:13:20.006Z");
}

TEST_CASE("discovery json: the state file round-trips the catalog exactly", "[discovery][json]") {
  const catalog c = sample();
  const std::string text = catalog_state_json(c, 1);
  auto st = parse_catalog_state(text);
  REQUIRE(st.ok());
  CHECK(st.revision == 1);
  CHECK(st.pushed_revision == 1);
  catalog back;
  back.restore(std::move(st.apis), st.revision);
  CHECK(catalog_state_json(back, 1) == text);
  CHECK(catalog_view_json(back, t0 + 10) == catalog_view_json(c, t0 + 10));

  // The restored route table still templates traffic with the route's pattern.
  CHECK(back.observe({"search", "search-v1", "GET", "/v1/search/y/1"}, t0 + 20) == observe_result::counted);
  CHECK_FALSE(back.seal(t0 + 20));
}

TEST_CASE("discovery json: a corrupt or foreign state file is rejected as a whole", "[discovery][json]") {
  const std::string good = catalog_state_json(sample(), 0);
  CHECK_FALSE(parse_catalog_state("").ok());
  CHECK_FALSE(parse_catalog_state(good.substr(0, good.size() / 2)).ok());
  CHECK_FALSE(parse_catalog_state(R"({"format":2,"revision":1,"pushed_revision":0,"apis":[]})").ok());
  CHECK_FALSE(parse_catalog_state(R"({"format":1,"revision":-1,"pushed_revision":0,"apis":[]})").ok());
  std::string bad_op = good;
  bad_op.replace(bad_op.find("\"count\":1"), 9, "\"count\":\"x\"");
  auto st = parse_catalog_state(bad_op);
  CHECK_FALSE(st.ok());
  CHECK(st.apis.empty());
  CHECK(parse_catalog_state(R"({"format":1,"revision":0,"pushed_revision":0,"apis":[]})").ok());
}
