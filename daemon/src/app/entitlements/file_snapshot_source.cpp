// The file snapshot source; see file_snapshot_source.hpp.
#include "app/entitlements/file_snapshot_source.hpp"

#include <cerrno>
#include <cstring>

#include "config/snapshot_yaml.hpp"
#include "util/log.hpp"

namespace aforo::app {

file_snapshot_source::file_snapshot_source(boost::asio::io_context& ioc, std::string path, snapshot_events events,
                                           std::chrono::milliseconds poll_interval)
    : path_(std::move(path)), events_(std::move(events)), poll_interval_(poll_interval), timer_(ioc), watch_(path_) {}

file_snapshot_source::~file_snapshot_source() { timer_.cancel(); }

void file_snapshot_source::start() {
  check(true);
  schedule();
}

void file_snapshot_source::refresh_now() { check(true); }

void file_snapshot_source::schedule() {
  timer_.expires_after(poll_interval_);
  timer_.async_wait([this, alive = alive_.watch()](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    check(false);
    schedule();
  });
}

void file_snapshot_source::check(bool force) {
  int err = 0;
  const auto stamp = watch_.current(&err);
  if (!stamp) {
    if (!unreadable_logged_) {
      util::log::error("entitlements: cannot read snapshot file " + path_ + ": " + std::strerror(err) +
                       "; checking again every " + std::to_string(poll_interval_.count()) + " ms");
      unreadable_logged_ = true;
    }
    watch_.forget();
    events_.failed();
    return;
  }
  unreadable_logged_ = false;
  if (force || watch_.differs(stamp)) return load(*stamp);
  if (seen_ok_) {
    events_.confirmed();
  } else {
    events_.failed();  // the same bad file: its errors were logged when it was read
  }
}

void file_snapshot_source::load(const io::file_stamp& stamp) {
  watch_.mark_read(stamp);
  // Symlinks are followed here on purpose: a Kubernetes ConfigMap mounts files as symlinks.
  auto content = io::read_whole_file(path_);
  const bool read = content.has_value();
  std::string text = read ? std::move(*content) : std::string();
  auto r = read ? config::parse_snapshot_text(text) : core::entitlements::snapshot_result{};
  if (!read) r.errors.push_back(path_ + ": cannot read the snapshot file");
  if (!r.ok()) {
    seen_ok_ = false;
    util::log::error("entitlements: snapshot file " + path_ + " has " + std::to_string(r.errors.size()) +
                     " problem(s); keeping the snapshot in force");
    for (const auto& e : r.errors) util::log::error("entitlements: " + path_ + ": " + e);
    events_.failed();
    return;
  }
  seen_ok_ = true;
  auto snap = std::make_shared<const core::entitlements::snapshot>(std::move(*r.value));
  util::log::info("entitlements: loaded snapshot version " + snap->version + " from " + path_ + " (" +
                  std::to_string(snap->customers.size()) + " customers, " + std::to_string(snap->rules.size()) +
                  " feature rules)");
  events_.loaded(std::move(snap), std::move(text));
}

}  // namespace aforo::app
