// A background thread for the CPU-heavy parts of the usage pipeline: parsing and validating the events
// posted to /v1/ingest/batch, and compressing the batches sent to Aforo. The io thread keeps answering
// /v1/check meanwhile, instead of making a check (and the gateway worker waiting on it, or sharing the
// CPU with it) wait behind a whole batch.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

namespace boost::asio {
class thread_pool;
}

namespace aforo::io {

/// One thread, started by the constructor, joined by the destructor after the jobs already posted.
/// `nice` (0..19) lowers the thread's CPU priority (Linux per-thread nice value), so the gateway's
/// own work and the io thread win the CPU when both want it; a failure to set it is logged once.
/// A low priority can starve the thread on a saturated host: callers check behind() and do the work
/// themselves then, so the pipeline never runs slower than on the io thread alone.
/// Threading: post() and behind() from any thread; jobs run one at a time, in the order posted.
class ingest_thread {
 public:
  explicit ingest_thread(int nice);
  ~ingest_thread();
  ingest_thread(const ingest_thread&) = delete;
  ingest_thread& operator=(const ingest_thread&) = delete;

  void post(std::function<void()> job);

  /// True while a job waits behind the one running: the thread is not keeping up.
  [[nodiscard]] bool behind() const noexcept { return pending_.load(std::memory_order_relaxed) >= 2; }

 private:
  std::unique_ptr<boost::asio::thread_pool> pool_;
  std::atomic<int> pending_{0};  // posted and not finished
};

}  // namespace aforo::io
