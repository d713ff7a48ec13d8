// Hostile input against the real sidecar: a body nested 200,000 levels deep to every endpoint
// that parses a JSON body is a 400 with a clear message, and the daemon lives on. (The unit tests in
// json_depth_test.cpp cover each parser of outside input on its own.)
#include <catch2/catch.hpp>

#include <string>

#include "support/testkit.hpp"

using namespace aforo::testkit;

namespace {

constexpr std::size_t levels = 200'000;

const std::string too_deep_body = R"({"error":{"code":"bad_request","message":"JSON nested deeper than 64 levels"}})";

}  // namespace

TEST_CASE("security: a body nested 200,000 levels deep is a 400 on every JSON endpoint, and the daemon lives on",
          "[security][hostile]") {
  sidecar_process sc("");
  const std::string opens(levels, '[');
  const std::string objects = [] {
    std::string s;
    for (std::size_t i = 0; i < levels; ++i) s += R"({"a":)";
    return s;
  }();
  struct post {
    const char* path;
    std::string body;
  };
  const post posts[] = {
      {"/v1/ingest/batch", R"({"events":)" + opens},
      {"/v1/ingest/batch", R"({"events":[{"customerId":"c","metadata":)" + objects},
      {"/v1/ingest", opens},
      {"/v1/ingest", R"({"customerId":"c","metadata":)" + objects},
      {"/v1/check", R"({"customer_id":"cust_acme","x":)" + opens},
      {"/v1/check", R"({"customer_id":"cust_acme","x":)" + objects},
  };
  for (const auto& p : posts) {
    INFO(p.path << " with " << p.body.substr(0, 40) << "...");
    auto c = sc.client();
    const auto r = c.post(p.path, p.body);
    CHECK(r.status == 400);
    CHECK(r.body == too_deep_body);
    REQUIRE(sc.proc().running());
    CHECK(sc.client().get("/healthz").status == 200);
  }
  CHECK(sc.metric(R"(aforo_sidecar_usage_requests_refused_total{reason="malformed"})") == 4);
  CHECK(sc.metric("aforo_sidecar_check_bad_requests_total") == 2);
  // Nesting within the limit is still parsed: an event whose metadata nests 60 levels is judged as an event.
  const auto ok = sc.client().post(
      "/v1/ingest", R"({"customerId":"c","metadata":{"x":)" + std::string(60, '[') + std::string(60, ']') + "}}");
  CHECK(ok.status == 202);
  CHECK(sc.proc().running());
}
