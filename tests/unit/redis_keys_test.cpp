// Redis key naming for the edge cache: prefixes per tenant, quota keys and their inverse.
#include <catch2/catch.hpp>

#include "core/entitlements/redis_keys.hpp"

using namespace aforo::core::entitlements;

TEST_CASE("redis keys: every key carries the tenant prefix", "[redis][keys]") {
  const redis_keys k("acme");
  CHECK(k.prefix() == "aforo:acme:");
  CHECK(k.quota("cust_1:search:2026-11") == "aforo:acme:q:cust_1:search:2026-11");
  CHECK(k.snapshot_version() == "aforo:acme:ent:version");
  CHECK(k.snapshot_hash("42") == "aforo:acme:ent:v:42");
  CHECK(k.snapshot_hash("42").rfind(k.snapshot_hash_prefix(), 0) == 0);
  CHECK(k.publish_lock() == "aforo:acme:ent:lock");
}

TEST_CASE("redis keys: an unset tenant gets a placeholder so tenants never share keys", "[redis][keys]") {
  const redis_keys none("");
  const redis_keys acme("acme");
  CHECK(none.prefix() == "aforo:_:");
  CHECK(none.quota("c:f:2026-11") != acme.quota("c:f:2026-11"));
}

TEST_CASE("redis keys: a quota key maps back to its counter key, other keys do not", "[redis][keys]") {
  const redis_keys k("acme");
  const std::string full = k.quota("cust:feat:2026-11-26T06");
  auto back = k.counter_key_of(full);
  REQUIRE(back);
  CHECK(*back == "cust:feat:2026-11-26T06");
  CHECK_FALSE(k.counter_key_of("aforo:other:q:cust:feat:2026-11"));
  CHECK_FALSE(k.counter_key_of(k.snapshot_version()));
  CHECK_FALSE(k.counter_key_of("aforo:acme:q:"));
}

TEST_CASE("redis keys: quota counters expire a margin after their period", "[redis][keys]") {
  CHECK(quota_expire_at(1000) == 4600);
  CHECK(quota_expire_at(1000, 10) == 1010);
}

TEST_CASE("redis keys: COGS counters have their own key set beside the quota counters", "[redis][keys]") {
  const redis_keys k("acme");
  CHECK(k.cogs("cust_1:$cogs:2026-11") == "aforo:acme:m:cust_1:$cogs:2026-11");
  CHECK(k.counter(redis_keys::cogs_set, "cust_1:$cogs:2026-11") == k.cogs("cust_1:$cogs:2026-11"));
  CHECK(k.counter(redis_keys::quota_set, "c:f:2026-11") == k.quota("c:f:2026-11"));
  CHECK(k.cogs("c:f:2026-11") != k.quota("c:f:2026-11"));
  CHECK_FALSE(k.counter_key_of(k.cogs("c:f:2026-11")));  // not a quota key
}

TEST_CASE("redis keys: margin notices are per customer, guard and period, apart from the COGS counters",
          "[redis][keys]") {
  const redis_keys k("acme");
  CHECK(k.margin_notice("cust_1", "default", "2026-11") == "aforo:acme:mn:cust_1:default:2026-11");
  CHECK(k.margin_notice("cust_1", "default", "2026-12") != k.margin_notice("cust_1", "default", "2026-11"));
  CHECK(k.margin_notice("cust_1", "strict", "2026-11") != k.margin_notice("cust_1", "default", "2026-11"));
  CHECK(k.margin_notice("cust_1", "default", "") == "aforo:acme:mn:cust_1:default:");  // no revenue period
  CHECK(k.margin_notice("c", "g", "p").rfind(k.cogs(""), 0) != 0);                     // not under m:
  CHECK(redis_keys("").margin_notice("c", "g", "p") != k.margin_notice("c", "g", "p"));
}
