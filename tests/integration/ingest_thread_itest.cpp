// The ingest thread (io/process/ingest_thread.hpp): jobs in order, its nice value, and behind().
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "io/process/ingest_thread.hpp"
#include "support/testkit.hpp"

using namespace std::chrono_literals;

TEST_CASE("ingest thread: runs jobs in order at its nice value and says when it is behind", "[ingest_thread]") {
  const int process_nice = ::getpriority(PRIO_PROCESS, 0);
  std::vector<int> order;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<int> nice_seen;
  std::atomic<bool> running{false};
  {
    aforo::io::ingest_thread t(7);
    CHECK_FALSE(t.behind());
    t.post([&] {
      nice_seen.set_value(::getpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid))));
      running = true;
      released.wait();  // a slow job: what a big batch on a busy CPU looks like
      order.push_back(1);
    });
    CHECK(aforo::testkit::wait_until([&] { return running.load(); }, 5s, 1ms));
    CHECK_FALSE(t.behind());  // one job running, none waiting
    t.post([&] { order.push_back(2); });
    CHECK(t.behind());  // one waits behind the running one: callers do the work themselves
    t.post([&] { order.push_back(3); });
    release.set_value();
    CHECK(aforo::testkit::wait_until([&] { return !t.behind(); }, 5s, 1ms));
    t.post([&] { order.push_back(4); });
  }  // the destructor runs what was posted, then joins
  CHECK(order == std::vector<int>{1, 2, 3, 4});
  CHECK(nice_seen.get_future().get() == 7);
  // The process's own priority is untouched: only the thread was lowered.
  CHECK(::getpriority(PRIO_PROCESS, 0) == process_nice);
}
