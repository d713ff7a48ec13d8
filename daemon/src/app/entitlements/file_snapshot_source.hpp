// The `file:PATH` snapshot source: loads a YAML or JSON snapshot file at start, then checks it once
// a second and re-reads it when it changed (inode, size or modification time), and on SIGHUP.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "app/entitlements/snapshot_source.hpp"
#include "io/file_watch.hpp"
#include "util/lifetime.hpp"

namespace aforo::app {

/// A bad file (unreadable, malformed, invalid) keeps the snapshot in force: each of its errors is
/// logged once, `failed` is reported on every check until the file changes, so the snapshot ages
/// and turns stale past entitlements.max_stale. An unchanged good file is `confirmed` on every check.
/// Reading and parsing block the io thread; snapshot files are expected to be small.
/// Threading: io thread only.
class file_snapshot_source final : public snapshot_source {
 public:
  /// The file is checked every `poll_interval` (1 s in the daemon; docs/design/snapshot.md#sources).
  file_snapshot_source(boost::asio::io_context& ioc, std::string path, snapshot_events events,
                       std::chrono::milliseconds poll_interval = std::chrono::seconds(1));
  ~file_snapshot_source() override;

  void start() override;
  void refresh_now() override;
  [[nodiscard]] std::chrono::milliseconds confirm_period() const override { return poll_interval_; }
  [[nodiscard]] std::string_view kind() const override { return "file"; }

 private:
  void check(bool force);
  void load(const io::file_stamp& stamp);
  void schedule();

  std::string path_;
  snapshot_events events_;
  std::chrono::milliseconds poll_interval_;
  boost::asio::steady_timer timer_;
  io::file_watch watch_;  // the version last parsed (none: not parsed, or unreadable since)
  bool seen_ok_ = false;  // whether that parse gave a snapshot
  bool unreadable_logged_ = false;
  util::lifetime alive_;
};

}  // namespace aforo::app
