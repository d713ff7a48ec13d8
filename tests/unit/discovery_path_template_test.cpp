// Discovery path templating: a table of real-world API paths, route patterns and template coverage.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "core/discovery/path_template.hpp"

using namespace aforo::core::discovery;

TEST_CASE("discovery templating: real-world paths fold ids and keep words", "[discovery][templating]") {
  struct row {
    const char* path;
    const char* expected;
  };
  const std::vector<row> table = {
      // GitHub
      {"/repos/octocat/Hello-World/issues/1347", "/repos/octocat/Hello-World/issues/{id}"},
      {"/repos/octocat/Hello-World/commits/6dcb09b5b57875f334f61aebed695e2e4193db5e",
       "/repos/octocat/Hello-World/commits/{id}"},
      {"/users/octocat/repos?per_page=100&page=2", "/users/octocat/repos"},
      {"/orgs/github/teams/justice-league/members", "/orgs/github/teams/justice-league/members"},
      {"/repos/o/r/pulls/42/comments/987654321", "/repos/o/r/pulls/{id}/comments/{id}"},
      {"/user/emails", "/user/emails"},
      {"/oauth2/authorize", "/oauth2/authorize"},
      // Stripe
      {"/v1/customers/cus_NffrFeUfNV2Hib", "/v1/customers/{id}"},
      {"/v1/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa/confirm", "/v1/payment_intents/{id}/confirm"},
      {"/v1/charges/ch_3LmzzQ2eZvKYlo2C0XjzUzJV/refunds", "/v1/charges/{id}/refunds"},
      {"/v1/checkout/sessions", "/v1/checkout/sessions"},
      {"/v1/subscription_items/si_OTzx8Hn3yQeJ41/usage_records", "/v1/subscription_items/{id}/usage_records"},
      // Twilio (the date is the API version)
      {"/2010-04-01/Accounts/AC1234567890abcdef1234567890abcdef/Messages.json",
       "/2010-04-01/Accounts/{id}/Messages.json"},
      {"/2010-04-01/Accounts/AC1234567890abcdef1234567890abcdef/Messages/SM0123456789abcdef0123456789abcdef.json",
       "/2010-04-01/Accounts/{id}/Messages/{id}.json"},
      // S3-like
      {"/my-bucket/photos/2024/cat.jpg", "/my-bucket/photos/{id}/cat.jpg"},
      {"/my-bucket/uploads/5f2b1c9e8d7a6b5c4d3e2f1a0b9c8d7e", "/my-bucket/uploads/{id}"},
      // UUIDs, any case
      {"/api/v2/orders/3fa85f64-5717-4562-b3fc-2c963f66afa6", "/api/v2/orders/{id}"},
      {"/api/v2/orders/3FA85F64-5717-4562-B3FC-2C963F66AFA6/items", "/api/v2/orders/{id}/items"},
      // Slack, Shopify, Google, Kubernetes
      {"/api/conversations.history/C024BE91L", "/api/conversations.history/{id}"},
      {"/admin/api/2024-01/orders/450789469.json", "/admin/api/2024-01/orders/{id}.json"},
      {"/drive/v3/files/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms", "/drive/v3/files/{id}"},
      {"/apis/batch/v1beta1/namespaces/default/cronjobs", "/apis/batch/v1beta1/namespaces/default/cronjobs"},
      {"/apis/apps/v1alpha1/deployments", "/apis/apps/v1alpha1/deployments"},
      // e-mails, tokens, hashes
      {"/users/jane.doe@example.com/profile", "/users/{id}/profile"},
      {"/users/jane.doe%40example.com", "/users/{id}"},
      {"/reset/eyJhbGciOiJIUzI1NiJ9-abc_123", "/reset/{id}"},
      {"/files/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "/files/sha256/{id}"},
      {"/ipfs/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "/ipfs/{id}"},
      // plain words, versions, slugs stay
      {"/v1/search/items", "/v1/search/items"},
      {"/v2", "/v2"},
      {"/health", "/health"},
      {"/blog/my-first-post", "/blog/my-first-post"},
      {"/products/order-12345", "/products/{id}"},
      // normalisation
      {"/", "/"},
      {"", "/"},
      {"//users//42/", "/users/{id}"},
      {"/items/7#section", "/items/{id}"},
  };
  for (const auto& r : table) {
    INFO("path: " << r.path);
    CHECK(template_path(r.path) == r.expected);
  }
  CHECK(table.size() >= 30);
}

TEST_CASE("discovery templating: segment classification", "[discovery][templating]") {
  CHECK(is_variable_segment("42"));
  CHECK(is_variable_segment("00000000-0000-0000-0000-000000000000"));
  CHECK(is_variable_segment("deadbeefdeadbeef"));
  CHECK_FALSE(is_variable_segment("deadbeef"));  // short hex is a word
  CHECK_FALSE(is_variable_segment("v1"));
  CHECK_FALSE(is_variable_segment("v10"));
  CHECK_FALSE(is_variable_segment("oauth2_callback"));  // one digit: a name
  CHECK_FALSE(is_variable_segment("2010-04-01"));       // a version date
  CHECK_FALSE(is_variable_segment("users"));
  CHECK(is_variable_segment(std::string(65, 'a')));  // nothing literal is that long
  CHECK(is_variable_segment("42.json"));
  CHECK_FALSE(is_variable_segment("index.html"));
}

TEST_CASE("discovery templating: the route's own path pattern is preferred", "[discovery][templating]") {
  const std::vector<std::string> paths = {"/v1/search", "/v1/search/items", "~/v1/orders/(?<id>\\d+)$"};
  CHECK(route_template(paths, "/v1/search/items/42") == std::optional<std::string>("/v1/search/items"));
  CHECK(route_template(paths, "/v1/search?q=x") == std::optional<std::string>("/v1/search"));
  CHECK(route_template(paths, "/v1/orders/17") == std::optional<std::string>("~/v1/orders/(?<id>\\d+)$"));
  CHECK_FALSE(route_template(paths, "/v2/other").has_value());

  // Catch-alls give no pattern: the request path is templated instead.
  const std::vector<std::string> catch_all = {"/", "~/(?<x>.*)"};
  CHECK_FALSE(route_template(catch_all, "/anything/42").has_value());
  CHECK(is_catch_all_route_path("/"));
  CHECK(is_catch_all_route_path("~/.*"));
  CHECK_FALSE(is_catch_all_route_path("~/users/\\d+"));
}

TEST_CASE("discovery templating: a template covers paths segment by segment", "[discovery][templating]") {
  CHECK(template_covers("/users/{id}", "/users/alice"));
  CHECK(template_covers("/users/{id}/repos", "/users/{id}/repos"));
  CHECK_FALSE(template_covers("/users/{id}", "/users/alice/repos"));
  CHECK_FALSE(template_covers("/users/me", "/users/alice"));
  CHECK(template_covers("/", "/"));
}
