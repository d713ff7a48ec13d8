// The L2 token bucket over a fake clock: burst, steady rate, waits and reset.
#include <catch2/catch.hpp>

#include "core/margin/token_bucket.hpp"

using namespace aforo::core::margin;

TEST_CASE("margin bucket: a full bucket allows one second's burst, then nothing", "[margin][bucket]") {
  token_bucket b({5, 1000}, 0);
  CHECK(b.burst() == 5);
  for (int i = 0; i < 5; ++i) CHECK(b.try_take(0));
  CHECK_FALSE(b.try_take(0));
  CHECK(b.wait_ms(0) == 200);
  CHECK_FALSE(b.try_take(199));
  CHECK(b.try_take(200));
}

TEST_CASE("margin bucket: over time it admits exactly the rate", "[margin][bucket]") {
  token_bucket b({5, 1000}, 0);
  int allowed = 0;
  // A request every 10 ms for 10 s: the burst of 5 plus 5 per second.
  for (std::int64_t t = 0; t < 10'000; t += 10) allowed += b.try_take(t) ? 1 : 0;
  CHECK(allowed == 5 + 50 - 1);  // the token due at exactly t = 10 000 is not taken
}

TEST_CASE("margin bucket: slow rates get a burst of one and exact refills", "[margin][bucket]") {
  token_bucket b({30, 60'000}, 1000);  // 30 per minute = one per 2 s
  CHECK(b.burst() == 1);
  CHECK(b.try_take(1000));
  CHECK_FALSE(b.try_take(2999));
  CHECK(b.wait_ms(2999) == 1);
  CHECK(b.try_take(3000));
}

TEST_CASE("margin bucket: a long idle time only fills the bucket", "[margin][bucket]") {
  token_bucket b({5, 1000}, 0);
  for (int i = 0; i < 5; ++i) CHECK(b.try_take(0));
  const std::int64_t much_later = std::int64_t{1} << 50;
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += b.try_take(much_later) ? 1 : 0;
  CHECK(allowed == 5);
  CHECK_FALSE(b.try_take(much_later - 1000));  // a clock going back gives nothing extra
}

TEST_CASE("margin bucket: reset refills with the new rate", "[margin][bucket]") {
  token_bucket b({2, 1000}, 0);
  CHECK(b.try_take(0));
  CHECK(b.try_take(0));
  CHECK_FALSE(b.try_take(0));
  b.reset({10, 1000}, 0);
  int allowed = 0;
  for (int i = 0; i < 20; ++i) allowed += b.try_take(0) ? 1 : 0;
  CHECK(allowed == 10);
}
