// Group commit for the disk spool; see spool_commit.hpp.
#include "app/pipeline/spool_commit.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "io/process/ingest_thread.hpp"
#include "app/pipeline/pipeline_custody.hpp"
#include "app/pipeline/pipeline_metrics.hpp"
#include "util/log.hpp"

namespace aforo::app {

spool_commit::spool_commit(boost::asio::io_context& ioc, pipeline_custody& custody, pipeline_metrics& metrics,
                           const config::buffer_config& cfg)
    : ioc_(ioc), custody_(custody), metrics_(metrics), mode_(cfg.fsync), interval_(cfg.fsync_interval), timer_(ioc) {
  if (mode_ != config::fsync_mode::off) thread_ = std::make_unique<io::ingest_thread>(0);
}

spool_commit::~spool_commit() {
  alive_.end();
  thread_.reset();  // joins: a sync in progress finishes; its completion sees alive_ ended
}

void spool_commit::start() {
  if (mode_ == config::fsync_mode::interval) arm_interval();
}

void spool_commit::arm_interval() {
  timer_.expires_after(interval_);
  timer_.async_wait([this, alive = alive_.watch()](const boost::system::error_code& ec) {
    if (ec || alive.expired() || stopped_) return;
    if (!syncing_ && custody_.has_unsynced()) begin_sync();
    arm_interval();
  });
}

void spool_commit::after_append(done_fn done) {
  if (mode_ != config::fsync_mode::always || stopped_) {
    done({});
    return;
  }
  waiting_.push_back(std::move(done));
  if (!syncing_) begin_sync();
}

void spool_commit::begin_sync() {
  syncing_ = true;
  auto files = std::make_shared<io::spool_unsynced>(custody_.take_unsynced());
  auto covered = std::make_shared<std::vector<done_fn>>(std::move(waiting_));
  waiting_.clear();
  thread_->post([this, files, covered, alive = alive_.watch()] {
    const std::error_code ec = io::spool_store::sync_files(*files);
    boost::asio::post(ioc_, [this, ec, covered, alive] {
      if (alive.expired()) return;
      finished(ec, std::move(*covered));
    });
  });
}

void spool_commit::finished(std::error_code ec, std::vector<done_fn> covered) {
  syncing_ = false;
  metrics_.spool_syncs.inc();
  if (ec) {
    metrics_.spool_sync_errors.inc();
    util::log::error("spool fdatasync failed (" + ec.message() + "): " + std::to_string(covered.size()) +
                     " request(s) answered 503; their events are kept and the senders retry");
    failing_ = true;
  } else if (failing_) {
    failing_ = false;
    util::log::info("spool fdatasync succeeds again");
  }
  for (auto& d : covered) d(ec);
  if (!waiting_.empty() && !stopped_) begin_sync();
}

void spool_commit::stop() {
  stopped_ = true;
  timer_.cancel();
  auto files = custody_.take_unsynced();
  const auto ec = io::spool_store::sync_files(files);
  auto covered = std::move(waiting_);
  waiting_.clear();
  for (auto& d : covered) d(ec);
}

}  // namespace aforo::app
