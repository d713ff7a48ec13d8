// A background thread for the CPU-heavy parts of the usage pipeline: parsing and validating the events
// posted to /v1/ingest/batch, and compressing the batches sent to Aforo. The io thread keeps answering
// /v1/check meanwhile, instead of making a check (and the gateway worker waiting on it, or sharing the
// CPU with it) wait behind a whole batch.
#pragma once

#include <functional>
#include <memory>

namespace boost::asio {
class thread_pool;
}

namespace aforo::app {

/// One thread, started by the constructor, joined by the destructor after the jobs already posted.
/// `nice` (0..19) lowers the thread's CPU priority (Linux per-thread nice value), so the gateway's
/// own work and the io thread win the CPU when both want it; a failure to set it is logged once.
/// Threading: post() from any thread; jobs run one at a time, in the order posted.
class ingest_thread {
 public:
  explicit ingest_thread(int nice);
  ~ingest_thread();
  ingest_thread(const ingest_thread&) = delete;
  ingest_thread& operator=(const ingest_thread&) = delete;

  void post(std::function<void()> job);

 private:
  std::unique_ptr<boost::asio::thread_pool> pool_;
};

}  // namespace aforo::app
