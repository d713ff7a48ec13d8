// The process's clock; see clock.hpp.
#include "util/clock.hpp"

#include <atomic>

namespace aforo::util {
namespace {

using wall_fn = std::chrono::system_clock::time_point (*)();
using steady_fn = std::chrono::steady_clock::time_point (*)();

std::atomic<wall_fn> wall_source{&std::chrono::system_clock::now};
std::atomic<steady_fn> steady_source{&std::chrono::steady_clock::now};

}  // namespace

clock_source set_clock(clock_source source) noexcept {
  clock_source old;
  old.wall = wall_source.exchange(source.wall ? source.wall : &std::chrono::system_clock::now);
  old.steady = steady_source.exchange(source.steady ? source.steady : &std::chrono::steady_clock::now);
  return old;
}

std::chrono::system_clock::time_point wall_now() noexcept { return wall_source.load(std::memory_order_relaxed)(); }

std::chrono::steady_clock::time_point steady_now() noexcept { return steady_source.load(std::memory_order_relaxed)(); }

}  // namespace aforo::util
