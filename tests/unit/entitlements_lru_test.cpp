// The entitlement LRU: hit, stale, miss and least-recently-used eviction, with time passed in.
#include <catch2/catch.hpp>

#include <string>

#include "core/entitlements/lru_cache.hpp"
#include "core/entitlements/string_map.hpp"

using namespace aforo::core::entitlements;
using namespace std::chrono_literals;

namespace {
using cache = lru_cache<std::string, int, string_hash>;
const cache::time_point t0{};
}  // namespace

TEST_CASE("lru: a fresh entry is a hit, an old one stale, an absent one a miss", "[entitlements][lru]") {
  cache c(4);
  c.put("a", 1, t0);

  auto r = c.lookup(std::string_view("a"), t0 + 10s, 30s);
  CHECK(r.state == cache_state::hit);
  REQUIRE(r.value != nullptr);
  CHECK(*r.value == 1);

  r = c.lookup(std::string_view("a"), t0 + 30s, 30s);
  CHECK(r.state == cache_state::hit);  // exactly ttl old is still fresh

  r = c.lookup(std::string_view("a"), t0 + 31s, 30s);
  CHECK(r.state == cache_state::stale);
  REQUIRE(r.value != nullptr);  // stale is still served
  CHECK(*r.value == 1);

  r = c.lookup(std::string_view("b"), t0, 30s);
  CHECK(r.state == cache_state::miss);
  CHECK(r.value == nullptr);
  CHECK_FALSE(r);
}

TEST_CASE("lru: a refresh replaces the value and its fetch time", "[entitlements][lru]") {
  cache c(4);
  c.put("a", 1, t0);
  c.put("a", 2, t0 + 60s);
  CHECK(c.size() == 1);
  auto r = c.lookup(std::string_view("a"), t0 + 70s, 30s);
  CHECK(r.state == cache_state::hit);
  CHECK(*r.value == 2);
}

TEST_CASE("lru: the least recently used entry is evicted when full", "[entitlements][lru]") {
  cache c(3);
  c.put("a", 1, t0);
  c.put("b", 2, t0);
  c.put("c", 3, t0);
  CHECK(c.lookup(std::string_view("a"), t0, 1s).state == cache_state::hit);  // a is now most recent
  c.put("d", 4, t0);                                                         // evicts b
  CHECK(c.size() == 3);
  CHECK(c.evictions() == 1);
  CHECK(c.lookup(std::string_view("b"), t0, 1s).state == cache_state::miss);
  CHECK(c.lookup(std::string_view("a"), t0, 1s).state == cache_state::hit);
  CHECK(c.lookup(std::string_view("c"), t0, 1s).state == cache_state::hit);
  CHECK(c.lookup(std::string_view("d"), t0, 1s).state == cache_state::hit);

  c.put("c", 30, t0);  // a replace refreshes recency: a is now the oldest
  c.put("e", 5, t0);
  CHECK(c.lookup(std::string_view("a"), t0, 1s).state == cache_state::miss);
  CHECK(c.lookup(std::string_view("c"), t0, 1s).state == cache_state::hit);
}

TEST_CASE("lru: erase and clear remove entries", "[entitlements][lru]") {
  cache c(2);
  c.put("a", 1, t0);
  c.put("b", 2, t0);
  CHECK(c.erase(std::string_view("a")));
  CHECK_FALSE(c.erase(std::string_view("a")));
  CHECK(c.size() == 1);
  c.clear();
  CHECK(c.size() == 0);
  CHECK(c.lookup(std::string_view("b"), t0, 1s).state == cache_state::miss);
  c.put("x", 9, t0);
  CHECK(c.lookup(std::string_view("x"), t0, 1s).state == cache_state::hit);
}

TEST_CASE("lru: capacity one keeps only the newest entry", "[entitlements][lru]") {
  cache c(0);  // treated as 1
  CHECK(c.capacity() == 1);
  c.put("a", 1, t0);
  c.put("b", 2, t0);
  CHECK(c.size() == 1);
  CHECK(c.lookup(std::string_view("a"), t0, 1s).state == cache_state::miss);
  CHECK(*c.lookup(std::string_view("b"), t0, 1s).value == 2);
}
