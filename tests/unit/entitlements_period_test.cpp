// UTC calendar periods: start, end (reset) and key across month ends, leap days and year end.
#include <catch2/catch.hpp>

#include <string>

#include "core/entitlements/period.hpp"

using namespace aforo::core::entitlements;

namespace {
std::int64_t at(const char* iso) {
  auto t = parse_iso8601(iso);
  REQUIRE(t.has_value());
  return *t;
}
std::string iso(std::int64_t t) {
  char buf[21];
  return std::string(format_iso8601(t, buf));
}
}  // namespace

TEST_CASE("period: ISO-8601 UTC text round-trips through unix seconds", "[entitlements][period]") {
  CHECK(at("1970-01-01T00:00:00Z") == 0);
  CHECK(at("2026-11-26T06:12:55Z") == 1'795'673'575);
  CHECK(iso(1'795'673'575) == "2026-11-26T06:12:55Z");
  CHECK(iso(at("2028-02-29T23:59:59Z")) == "2028-02-29T23:59:59Z");
  CHECK_FALSE(parse_iso8601("2026-02-29T00:00:00Z").has_value());  // not a leap year
  CHECK_FALSE(parse_iso8601("2026-11-26T24:00:00Z").has_value());
  CHECK_FALSE(parse_iso8601("2026-11-26 06:00:00Z").has_value());
  CHECK_FALSE(parse_iso8601("2026-11-26T06:00:00").has_value());
}

TEST_CASE("period: month, day and hour windows and keys", "[entitlements][period]") {
  const std::int64_t t = at("2026-11-26T06:12:55Z");
  auto m = period_of(period_kind::month, t);
  CHECK(iso(m.start) == "2026-11-01T00:00:00Z");
  CHECK(iso(m.end) == "2026-12-01T00:00:00Z");
  CHECK(m.key() == "2026-11");
  auto d = period_of(period_kind::day, t);
  CHECK(iso(d.start) == "2026-11-26T00:00:00Z");
  CHECK(iso(d.end) == "2026-11-27T00:00:00Z");
  CHECK(d.key() == "2026-11-26");
  auto h = period_of(period_kind::hour, t);
  CHECK(iso(h.start) == "2026-11-26T06:00:00Z");
  CHECK(iso(h.end) == "2026-11-26T07:00:00Z");
  CHECK(h.key() == "2026-11-26T06");
}

TEST_CASE("period: the month rolls over at the UTC month end", "[entitlements][period]") {
  const std::int64_t last = at("2026-11-30T23:59:59Z");
  CHECK(period_of(period_kind::month, last).key() == "2026-11");
  CHECK(period_of(period_kind::month, last + 1).key() == "2026-12");
  CHECK(period_of(period_kind::month, last).end == last + 1);
  CHECK(period_of(period_kind::month, last + 1).start == last + 1);
  CHECK(period_of(period_kind::day, last + 1).key() == "2026-12-01");
  CHECK(period_of(period_kind::hour, last + 1).key() == "2026-12-01T00");
}

TEST_CASE("period: Dec 31 rolls into Jan 1 of the next year", "[entitlements][period]") {
  const std::int64_t last = at("2026-12-31T23:59:59Z");
  auto m = period_of(period_kind::month, last);
  CHECK(m.key() == "2026-12");
  CHECK(iso(m.end) == "2027-01-01T00:00:00Z");
  CHECK(period_of(period_kind::month, last + 1).key() == "2027-01");
  CHECK(period_of(period_kind::day, last).key() == "2026-12-31");
  CHECK(period_of(period_kind::day, last + 1).key() == "2027-01-01");
  CHECK(period_of(period_kind::hour, last).key() == "2026-12-31T23");
  CHECK(period_of(period_kind::hour, last + 1).key() == "2027-01-01T00");
}

TEST_CASE("period: February has 29 days in a leap year and 28 otherwise", "[entitlements][period]") {
  auto feb_leap = period_of(period_kind::month, at("2028-02-10T00:00:00Z"));
  CHECK(iso(feb_leap.end) == "2028-03-01T00:00:00Z");
  CHECK(feb_leap.end - feb_leap.start == 29 * 86400);
  auto feb = period_of(period_kind::month, at("2027-02-10T00:00:00Z"));
  CHECK(feb.end - feb.start == 28 * 86400);
  CHECK(period_of(period_kind::day, at("2028-02-29T12:00:00Z")).key() == "2028-02-29");
  CHECK(iso(period_of(period_kind::day, at("2028-02-29T12:00:00Z")).end) == "2028-03-01T00:00:00Z");
  CHECK(period_of(period_kind::month, at("2100-02-28T23:59:59Z")).end == at("2100-03-01T00:00:00Z"));  // 2100: no leap
}

TEST_CASE("period: keys parse back to their windows", "[entitlements][period]") {
  for (auto kind : {period_kind::month, period_kind::day, period_kind::hour}) {
    const auto w = period_of(kind, at("2026-11-26T06:12:55Z"));
    const auto back = parse_period_key(w.key());
    REQUIRE(back.has_value());
    CHECK(back->kind == kind);
    CHECK(back->start == w.start);
    CHECK(back->end == w.end);
  }
  CHECK_FALSE(parse_period_key("2026-13").has_value());
  CHECK_FALSE(parse_period_key("2026-02-30").has_value());
  CHECK_FALSE(parse_period_key("2026-11-26T24").has_value());
  CHECK_FALSE(parse_period_key("2026/11").has_value());
  CHECK(parse_period_kind("day") == period_kind::day);
  CHECK_FALSE(parse_period_kind("week").has_value());
}
