// The daemon's clock (util/clock.hpp), which tests can set, and the lifetime guard callbacks check
// (util/lifetime.hpp).
#include <catch2/catch.hpp>

#include <functional>
#include <thread>

#include "util/clock.hpp"
#include "util/lifetime.hpp"

using namespace aforo;
using namespace std::chrono_literals;

namespace {
std::chrono::system_clock::time_point fixed_wall() {
  return std::chrono::system_clock::time_point(1'700'000'000'123ms);
}
std::chrono::steady_clock::time_point fixed_steady() { return std::chrono::steady_clock::time_point(42'000ms); }
}  // namespace

TEST_CASE("clock: a test can set the process clock and put the system clock back", "[util][clock]") {
  const auto old = util::set_clock({&fixed_wall, &fixed_steady});
  CHECK(util::unix_now() == 1'700'000'000);
  CHECK(util::unix_now_ms() == 1'700'000'000'123);
  CHECK(util::steady_now_ms() == 42'000);
  CHECK(util::steady_clock::now() == fixed_steady());
  CHECK(util::wall_now() == fixed_wall());
  util::set_clock(old);
  const auto sys =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(util::unix_now() >= sys);
  CHECK(util::unix_now() <= sys + 1);
  const auto ours = util::steady_now();
  const auto system = std::chrono::steady_clock::now();
  CHECK(ours <= system);
  CHECK(system - ours < 1s);
}

TEST_CASE("clock: a null source means the system clock", "[util][clock]") {
  const auto old = util::set_clock({nullptr, nullptr});
  CHECK(util::unix_now() > 1'700'000'000);
  util::set_clock(old);
}

TEST_CASE("lifetime: handles expire when the owner ends or goes", "[util][lifetime]") {
  util::lifetime::handle kept;
  CHECK(kept.expired());  // never bound
  {
    util::lifetime owner;
    auto h = owner.watch();
    kept = owner.watch();
    CHECK_FALSE(h.expired());
    CHECK_FALSE(owner.ended());
  }
  CHECK(kept.expired());  // the owner was destroyed

  util::lifetime owner;
  auto h = owner.watch();
  owner.end();
  CHECK(h.expired());
  CHECK(owner.ended());
  owner.end();                     // idempotent
  CHECK(owner.watch().expired());  // a handle taken after the end is expired too
}

TEST_CASE("lifetime: a queued callback does nothing once its owner is gone", "[util][lifetime]") {
  struct owner_t {
    int calls = 0;
    util::lifetime alive_;
    std::function<void()> later() {
      return [this, alive = alive_.watch()] {
        if (alive.expired()) return;
        ++calls;
      };
    }
  };
  std::function<void()> queued;
  int seen = 0;
  {
    owner_t o;
    o.later()();
    seen = o.calls;
    queued = o.later();
  }
  CHECK(seen == 1);
  queued();  // the owner is gone: no use of `this`
}

TEST_CASE("lifetime: a handle can be checked on another thread while the owner ends", "[util][lifetime]") {
  util::lifetime owner;
  auto h = owner.watch();
  std::thread t([h] {
    for (int i = 0; i < 10000; ++i) (void)h.expired();
  });
  owner.end();
  t.join();
  CHECK(h.expired());
}
