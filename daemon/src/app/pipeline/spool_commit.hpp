// Group commit for the disk spool (buffer.fsync): acknowledgements wait for one fdatasync shared by
// every batch appended while the previous one ran, done on a thread of its own.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <system_error>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "config/config.hpp"
#include "util/lifetime.hpp"

namespace boost::asio {
class io_context;
}

namespace aforo::io {
class ingest_thread;
}  // namespace aforo::io

namespace aforo::app {

class pipeline_custody;
struct pipeline_metrics;

/// always: after_append(done) runs `done` once an fdatasync that started after the append has
/// finished (a group commit: appends made while one sync runs share the next). interval: a timer
/// syncs every buffer.fsync_interval; `done` runs at once. off: no sync while running; `done` runs
/// at once. A failed sync passes its error to the `done`s it covered (the caller answers 503),
/// is logged at ERROR and counted. Threading: io thread; the fdatasync runs on a thread it owns.
class spool_commit {
 public:
  using done_fn = std::function<void(std::error_code)>;

  spool_commit(boost::asio::io_context& ioc, pipeline_custody& custody, pipeline_metrics& metrics,
               const config::buffer_config& cfg);
  ~spool_commit();

  void start();
  /// Call after an append to the spool; `done` runs when it is on stable storage (per the mode).
  void after_append(done_fn done);
  /// Stops the timer and syncs what is left on the calling thread, running the waiting `done`s.
  void stop();

  [[nodiscard]] config::fsync_mode mode() const noexcept { return mode_; }

 private:
  void begin_sync();
  void finished(std::error_code ec, std::vector<done_fn> covered);
  void arm_interval();

  boost::asio::io_context& ioc_;
  pipeline_custody& custody_;
  pipeline_metrics& metrics_;
  config::fsync_mode mode_;
  std::chrono::milliseconds interval_;
  boost::asio::steady_timer timer_;
  std::unique_ptr<io::ingest_thread> thread_;
  std::vector<done_fn> waiting_;  // appended, their sync not started
  bool syncing_ = false;
  bool stopped_ = false;
  bool failing_ = false;  // logged a failed sync; the next success logs recovery
  util::lifetime alive_;
};

}  // namespace aforo::app
