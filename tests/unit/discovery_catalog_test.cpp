// Discovery catalog: versions move on changes of the set of operations only, entry states over time,
// the join of traffic with the Admin API, and the per-service cardinality cap.
#include <catch2/catch.hpp>

#include <string>

#include "core/discovery/catalog.hpp"

using namespace aforo::core::discovery;

namespace {

constexpr epoch_ms t0 = 1'700'000'000'000;
constexpr epoch_ms hour = 3600 * 1000;

traffic_observation req(std::string service, std::string method, std::string path, std::string route = "") {
  return {std::move(service), std::move(route), std::move(method), std::move(path)};
}

const operation* find_op(const catalog& c, const std::string& api_name, const std::string& path,
                         const std::string& method) {
  auto a = c.apis().find(api_name);
  if (a == c.apis().end()) return nullptr;
  auto it = a->second.operations.find({path, method});
  return it == a->second.operations.end() ? nullptr : &it->second;
}

kong_admin_state search_admin(bool with_items_route = true) {
  kong_admin_state s;
  s.services.push_back({"svc-1", "search", "search.internal", "http", "", {"aforo:monetized", "team-a"}, true});
  kong_route r1;
  r1.id = "route-1";
  r1.name = "search-v1";
  r1.service_id = "svc-1";
  r1.paths = {"/v1/search"};
  r1.methods = {"GET", "POST"};
  r1.hosts = {"api.example.com"};
  s.routes.push_back(r1);
  if (with_items_route) {
    kong_route r2;
    r2.id = "route-2";
    r2.name = "items";
    r2.service_id = "svc-1";
    r2.paths = {"~/v1/items/(?<id>\\d+)$"};
    s.routes.push_back(r2);
  }
  s.plugins.push_back({"p1", "aforo-metering", "", "", "", true, {}});
  s.plugins.push_back({"p2", "rate-limiting", "svc-1", "", "", true, {}});
  s.plugins.push_back({"p3", "cors", "other-svc", "", "", true, {}});
  return s;
}

}  // namespace

TEST_CASE("discovery catalog: an API's version moves when its set of operations changes, not on counts",
          "[discovery][catalog]") {
  catalog c;
  CHECK(c.observe(req("users", "GET", "/users/1"), t0) == observe_result::added);
  CHECK(c.observe(req("users", "GET", "/users/2"), t0) == observe_result::counted);
  REQUIRE(c.seal(t0));
  CHECK(c.apis().at("users").version == 1);
  CHECK(c.revision() == 1);
  CHECK(find_op(c, "users", "/users/{id}", "GET")->count == 2);

  // Only counts: no new version, no new revision.
  c.observe(req("users", "GET", "/users/3"), t0 + 1);
  CHECK_FALSE(c.seal(t0 + 1));
  CHECK(c.apis().at("users").version == 1);
  CHECK(c.revision() == 1);

  // Two new operations in one change: one new version.
  c.observe(req("users", "POST", "/users"), t0 + 2);
  c.observe(req("users", "DELETE", "/users/9"), t0 + 2);
  REQUIRE(c.seal(t0 + 2));
  CHECK(c.apis().at("users").version == 2);
  CHECK(c.revision() == 2);

  // Another API does not move this one's version.
  c.observe(req("billing", "GET", "/invoices/in_1MtHbELkdIwHu7ixl4OzzPMv"), t0 + 3);
  REQUIRE(c.seal(t0 + 3));
  CHECK(c.apis().at("users").version == 2);
  CHECK(c.apis().at("billing").version == 1);
  CHECK(find_op(c, "billing", "/invoices/{id}", "GET") != nullptr);
}

TEST_CASE("discovery catalog: events without a service or route are ignored", "[discovery][catalog]") {
  catalog c;
  CHECK(c.observe(req("", "GET", "/x"), t0) == observe_result::ignored);
  CHECK(c.observe(req("svc", "", "/x"), t0) == observe_result::ignored);
  CHECK(c.observe(req("svc", "GET", "no-slash"), t0) == observe_result::ignored);
  CHECK(c.observe(req("svc", "G E T", "/x"), t0) == observe_result::ignored);
  CHECK_FALSE(c.seal(t0));
  CHECK(c.apis().empty());
}

TEST_CASE("discovery catalog: the Admin API declares operations, tags, hosts and plugins",
          "[discovery][catalog][admin]") {
  catalog c;
  c.apply_admin(search_admin(), t0);
  REQUIRE(c.seal(t0));
  const api& a = c.apis().at("search");
  CHECK(a.version == 1);
  CHECK(a.declared);
  CHECK(a.service_id == "svc-1");
  CHECK(a.monetized());
  CHECK(a.metered());
  CHECK(a.tags == std::vector<std::string>{"aforo:monetized", "team-a"});
  CHECK(a.hosts == std::vector<std::string>{"api.example.com"});
  CHECK(a.plugins == std::vector<std::string>{"aforo-metering", "rate-limiting"});
  REQUIRE(a.operations.size() == 3);
  CHECK(find_op(c, "search", "/v1/search", "GET")->source() == operation_source::admin);
  CHECK(find_op(c, "search", "/v1/search", "POST") != nullptr);
  CHECK(find_op(c, "search", "~/v1/items/(?<id>\\d+)$", "*") != nullptr);

  // Traffic through the routes joins the declared operations (the route's pattern wins).
  CHECK(c.observe(req("search", "GET", "/v1/search/anything/42", "search-v1"), t0 + 1) == observe_result::counted);
  CHECK(c.observe(req("svc-1", "DELETE", "/v1/items/77", "route-2"), t0 + 1) == observe_result::counted);
  CHECK(find_op(c, "search", "/v1/search", "GET")->source() == operation_source::both);
  CHECK(find_op(c, "search", "~/v1/items/(?<id>\\d+)$", "*")->count == 1);
  // A request outside every route path is templated itself.
  CHECK(c.observe(req("search", "GET", "/v2/legacy/123", "search-v1"), t0 + 1) == observe_result::added);
  CHECK(find_op(c, "search", "/v2/legacy/{id}", "GET")->source() == operation_source::traffic);
  REQUIRE(c.seal(t0 + 1));
  CHECK(c.apis().at("search").version == 2);

  // The same poll again changes nothing.
  c.apply_admin(search_admin(), t0 + 2);
  CHECK_FALSE(c.seal(t0 + 2));

  // Tags changing moves the revision but not the version.
  auto tagged = search_admin();
  tagged.services[0].tags = {"team-a"};
  c.apply_admin(tagged, t0 + 3);
  CHECK(c.seal(t0 + 3));
  CHECK(c.apis().at("search").version == 2);
  CHECK_FALSE(c.apis().at("search").monetized());
}

TEST_CASE("discovery catalog: undeclared operations are removed when never seen, kept when seen",
          "[discovery][catalog][admin]") {
  catalog c;
  c.apply_admin(search_admin(true), t0);
  c.observe(req("search", "GET", "/v1/search", "search-v1"), t0);
  c.seal(t0);
  c.apply_admin(search_admin(false), t0 + 10);  // the items route is gone
  REQUIRE(c.seal(t0 + 10));
  CHECK(c.apis().at("search").version == 2);
  CHECK(find_op(c, "search", "~/v1/items/(?<id>\\d+)$", "*") == nullptr);

  // The whole service disappears: its seen operation stays, undeclared; the unseen ones go.
  c.apply_admin(kong_admin_state{}, t0 + 20);
  REQUIRE(c.seal(t0 + 20));
  const api& a = c.apis().at("search");
  CHECK_FALSE(a.declared);
  CHECK(a.version == 3);
  REQUIRE(a.operations.size() == 1);
  CHECK(find_op(c, "search", "/v1/search", "GET")->source() == operation_source::traffic);
}

TEST_CASE("discovery catalog: traffic that named a service by id merges under its name", "[discovery][catalog]") {
  catalog c;
  c.observe(req("svc-1", "GET", "/v1/search"), t0);
  c.seal(t0);
  REQUIRE(c.apis().count("svc-1") == 1);
  c.apply_admin(search_admin(), t0 + 1);
  c.seal(t0 + 1);
  CHECK(c.apis().count("svc-1") == 0);
  CHECK(find_op(c, "search", "/v1/search", "GET")->source() == operation_source::both);
  CHECK(find_op(c, "search", "/v1/search", "GET")->count == 1);
}

TEST_CASE("discovery catalog: states go NEW, CHANGED, UNCHANGED and STALE with time", "[discovery][catalog][state]") {
  catalog_limits limits;
  limits.stale_after_ms = 24 * hour;
  catalog c(limits);
  c.observe(req("search", "GET", "/v1/search", "search-v1"), t0);
  c.seal(t0);
  const auto& op = [&]() -> const operation& { return *find_op(c, "search", "/v1/search", "GET"); };
  const auto& api_of = [&]() -> const api& { return c.apis().at("search"); };

  CHECK(c.state_of(op(), t0 + hour) == entry_state::new_entry);
  CHECK(c.state_of(api_of(), t0 + hour) == entry_state::new_entry);

  // Seen every 12 h: no longer new, not stale, never changed.
  c.observe(req("search", "GET", "/v1/search"), t0 + 12 * hour);
  c.observe(req("search", "GET", "/v1/search"), t0 + 24 * hour);
  CHECK(c.state_of(op(), t0 + 30 * hour) == entry_state::unchanged);
  CHECK(c.state_of(api_of(), t0 + 30 * hour) == entry_state::unchanged);

  // Declared by the Admin API at +30 h: its source changed (traffic -> both).
  c.apply_admin(search_admin(false), t0 + 30 * hour);
  c.seal(t0 + 30 * hour);
  CHECK(op().source() == operation_source::both);
  CHECK(c.state_of(op(), t0 + 31 * hour) == entry_state::changed);
  // The API's version moved (the POST operation was declared): CHANGED.
  CHECK(api_of().version == 2);
  CHECK(c.state_of(api_of(), t0 + 31 * hour) == entry_state::changed);

  // Declared but unseen for longer than stale_after: STALE.
  CHECK(c.state_of(*find_op(c, "search", "/v1/search", "POST"), t0 + 30 * hour + 24 * hour + 1) == entry_state::stale);
  CHECK(c.state_of(op(), t0 + 30 * hour + 24 * hour) == entry_state::changed);
  CHECK(c.state_of(op(), t0 + 30 * hour + 24 * hour + 1) == entry_state::stale);
  CHECK(c.state_of(api_of(), t0 + 30 * hour + 24 * hour + 1) == entry_state::stale);

  // Seen again: back from STALE.
  c.observe(req("search", "GET", "/v1/search"), t0 + 60 * hour);
  CHECK(c.state_of(op(), t0 + 60 * hour) == entry_state::unchanged);
  CHECK(c.state_of(api_of(), t0 + 60 * hour) != entry_state::stale);

  // Seen but no longer declared: STALE once stale_after passed since the declaration went away.
  c.apply_admin(kong_admin_state{}, t0 + 70 * hour);
  c.seal(t0 + 70 * hour);
  CHECK(op().source() == operation_source::traffic);
  CHECK(c.state_of(op(), t0 + 70 * hour + 24 * hour) == entry_state::changed);
  CHECK(c.state_of(op(), t0 + 70 * hour + 24 * hour + 1) == entry_state::stale);
}

TEST_CASE("discovery catalog: the cap folds into covering templates, evicts STALE, then drops",
          "[discovery][catalog][cap]") {
  catalog_limits limits;
  limits.max_operations_per_service = 3;
  limits.stale_after_ms = hour;
  catalog c(limits);
  c.observe(req("files", "GET", "/files/{id}"), t0);  // a template already
  c.observe(req("files", "GET", "/a"), t0);
  c.observe(req("files", "GET", "/b"), t0);
  c.seal(t0);
  REQUIRE(c.apis().at("files").operations.size() == 3);

  // Random names at the cap: counted into the covering /files/{id}.
  for (int i = 0; i < 50; ++i)
    CHECK(c.observe(req("files", "GET", "/files/name-" + std::string(1, static_cast<char>('a' + i % 26))), t0 + 1) ==
          observe_result::folded);
  CHECK(c.apis().at("files").folded == 50);
  CHECK(find_op(c, "files", "/files/{id}", "GET")->count == 51);

  // Nothing covers /c and nothing is stale: dropped, counted.
  CHECK(c.observe(req("files", "GET", "/c"), t0 + 2) == observe_result::dropped);
  CHECK(c.apis().at("files").dropped == 1);
  CHECK_FALSE(c.seal(t0 + 2));
  CHECK(c.apis().at("files").operations.size() == 3);

  // Later /a and /files/{id} keep being used; /b goes STALE and makes room for /c.
  c.observe(req("files", "GET", "/a"), t0 + 2 * hour);
  c.observe(req("files", "GET", "/files/9"), t0 + 2 * hour);
  CHECK(c.observe(req("files", "GET", "/c"), t0 + 2 * hour) == observe_result::added);
  CHECK(find_op(c, "files", "/b", "GET") == nullptr);
  CHECK(find_op(c, "files", "/c", "GET") != nullptr);
  REQUIRE(c.seal(t0 + 2 * hour));
  CHECK(c.apis().at("files").version == 2);
  CHECK(c.apis().at("files").operations.size() == 3);
}

TEST_CASE("discovery catalog: the number of APIs is bounded", "[discovery][catalog][cap]") {
  catalog_limits limits;
  limits.max_apis = 2;
  catalog c(limits);
  CHECK(c.observe(req("a", "GET", "/x"), t0) == observe_result::added);
  CHECK(c.observe(req("b", "GET", "/x"), t0) == observe_result::added);
  CHECK(c.observe(req("c", "GET", "/x"), t0) == observe_result::dropped);
  c.seal(t0);
  CHECK(c.apis().size() == 2);
}
