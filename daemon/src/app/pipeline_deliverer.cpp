// The usage pipeline's delivery loop; see pipeline_deliverer.hpp.
#include "app/pipeline_deliverer.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "core/pipeline/batch_split.hpp"
#include "util/log.hpp"

namespace aforo::app {
namespace {

using namespace std::chrono_literals;

core::retry_settings retry_of(const config::sidecar_config& cfg) {
  core::retry_settings s;
  s.max_retries = cfg.retry.max_retries;
  s.backoff = cfg.retry.backoff;
  s.jitter_percent = cfg.retry.jitter_percent;
  s.unauthorized_probe = cfg.retry.unauthorized_probe;
  return s;
}

constexpr auto event_failure_log_every = 10s;

std::string describe(const send_report& rep) {
  switch (rep.outcome.what) {
    case core::delivery_outcome::kind::timeout: return "network timeout to " + rep.host;
    case core::delivery_outcome::kind::network_error: return "unreachable at " + rep.host + ": " + rep.error_message;
    case core::delivery_outcome::kind::http_status: break;
  }
  return "answered " + std::to_string(rep.outcome.status);
}

}  // namespace

pipeline_deliverer::pipeline_deliverer(boost::asio::io_context& ioc, pipeline_custody& custody, pipeline_sender& sender,
                                       pipeline_metrics& metrics, const config::sidecar_config& cfg,
                                       ingest_status& status)
    : custody_(custody),
      sender_(sender),
      metrics_(metrics),
      status_(status),
      retry_(retry_of(cfg)),
      memory_mode_(cfg.buffer.durability == config::durability_mode::memory),
      timer_(ioc),
      rng_(std::random_device{}()),
      alive_(std::make_shared<bool>(true)) {}

pipeline_deliverer::~pipeline_deliverer() { *alive_ = false; }

void pipeline_deliverer::reload(const config::sidecar_config& cfg) {
  retry_ = retry_of(cfg);
  sender_.set_compression(cfg.batch.codec);
  kick();
}

void pipeline_deliverer::kick() {
  if (stopping_ || in_flight_) return;
  pump();
}

void pipeline_deliverer::arm(clock::time_point at) {
  if (armed_for_ && *armed_for_ == at) return;
  armed_for_ = at;
  timer_.expires_at(at);
  timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    armed_for_.reset();
    pump();
  });
}

void pipeline_deliverer::pump() {
  if (stopping_ || in_flight_) return;
  const auto now = clock::now();
  if (now < not_before_) {
    arm(not_before_);
    return;
  }
  if (!current_) {
    current_ = custody_.next_due(now);
    parts_.clear();
    attempt_ = 0;
  }
  if (current_) {
    send_current();
    return;
  }
  if (auto at = custody_.next_deadline()) {
    arm(std::max(*at, now));
  }
}

void pipeline_deliverer::send_current() {
  in_flight_ = true;
  if (attempt_ > 0) metrics_.retries.inc();
  ++attempt_;
  sender_.send(sending_body(), [this, alive = std::weak_ptr<bool>(alive_)](send_report rep) {
    if (alive.expired()) return;
    on_report(std::move(rep));
  });
}

const std::string& pipeline_deliverer::sending_body() const {
  return parts_.empty() ? current_->body : parts_.front().body;
}

std::uint32_t pipeline_deliverer::sending_events() const {
  return parts_.empty() ? current_->events : parts_.front().events;
}

void pipeline_deliverer::on_report(send_report rep) {
  in_flight_ = false;
  if (stopping_ || !current_) return;
  const auto now = clock::now();
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto d = core::decide_delivery(rep.outcome, attempt_, retry_, unit(rng_), now);
  if (d.action == core::delivery_action::done) {
    on_delivered(rep);
  } else if (d.action == core::delivery_action::split) {
    on_too_large(rep);
  } else {
    on_failure(rep, d);
  }
  pump();
}

void pipeline_deliverer::part_done() {
  attempt_ = 0;
  if (!parts_.empty()) parts_.pop_front();
  if (!parts_.empty()) return;  // the next part goes out at once
  custody_.delivered(*current_);
  current_.reset();
}

void pipeline_deliverer::hold(clock::time_point at) {
  // The parts already delivered are sent again with the rest: Aforo deduplicates them by key.
  parts_.clear();
  if (custody_.keep(*current_)) current_.reset();
  attempt_ = 0;
  not_before_ = at;
}

bool pipeline_deliverer::keep_refused(const send_report& rep) {
  const auto events = sending_events();
  const auto refused = core::refused_in(*rep.ack, events);
  if (refused.events.empty() && refused.unidentified == 0) return true;
  const int status = rep.outcome.status;
  const std::string_view now;  // the dead-letter file stamps the time
  const auto split = core::split_batch_body(sending_body());
  std::vector<std::string> bodies;
  std::vector<io::dead_letter_entry> entries;
  if (refused.unidentified != 0 || !split || split->size() != events) {
    // Failures without an index (or a body of another shape): the whole request, with ingest's answer.
    entries.push_back({sending_body(), events, status, "event_failed", now, rep.response_body});
  } else {
    bodies.reserve(refused.events.size());
    for (const auto& r : refused.events) bodies.push_back(core::join_events(*split, r.index, r.index + 1));
    for (std::size_t i = 0; i < refused.events.size(); ++i) {
      const auto& r = refused.events[i];
      entries.push_back({bodies[i], 1, status, r.listed ? "event_failed" : "success_false", now, r.message});
    }
  }
  return custody_.dead_letter_events(entries);
}

void pipeline_deliverer::on_delivered(const send_report& rep) {
  const auto events = sending_events();
  std::uint64_t failed = 0;
  if (rep.ack) {
    if (!keep_refused(rep)) {
      hold(clock::now() + (retry_.backoff.empty() ? std::chrono::milliseconds(1000) : retry_.backoff.front()));
      return;
    }
    failed = std::min<std::uint64_t>(rep.ack->success ? rep.ack->failed : events - rep.ack->accepted, events);
    metrics_.duplicates.inc(rep.ack->duplicates);
    if (failed != 0) log_event_failures(*rep.ack, events);
  }
  metrics_.delivered.inc(events - failed);
  metrics_.ingest_failed.inc(failed);
  part_done();
  status_.accepted(rep.host);
  if (failing_) {
    failing_ = false;
    last_problem_.clear();
    util::log::info(custody_.spool_events() > 0 ? "ingest recovered, draining disk spool first" : "ingest recovered");
  }
}

void pipeline_deliverer::on_too_large(const send_report& rep) {
  const auto events = sending_events();
  auto split = core::split_batch_body(sending_body());
  if (events <= 1 || !split || split->size() <= 1) {
    // One event ingest will not take: poison.
    util::log::error("ingest refused a single event as too large (413); written to " + custody_.dead_letter_path());
    if (parts_.empty()) {
      if (custody_.dead_letter(*current_, 413, rep.response_body, "too_large")) {
        current_.reset();
        attempt_ = 0;
      } else {
        hold(clock::now() + std::chrono::seconds(1));
      }
      return;
    }
    if (!custody_.dead_letter_events({{sending_body(), events, 413, "too_large", "", rep.response_body}})) {
      hold(clock::now() + std::chrono::seconds(1));
      return;
    }
    part_done();
    return;
  }
  metrics_.ingest_splits.inc();
  custody_.limit_request_events(events);
  const std::size_t half = split->size() / 2;
  part first{core::join_events(*split, 0, half), static_cast<std::uint32_t>(half)};
  part second{core::join_events(*split, half, split->size()), static_cast<std::uint32_t>(split->size() - half)};
  if (!parts_.empty()) parts_.pop_front();
  parts_.push_front(std::move(second));
  parts_.push_front(std::move(first));
  attempt_ = 0;
}

void pipeline_deliverer::on_failure(const send_report& rep, const core::retry_decision& d) {
  const int status = rep.outcome.what == core::delivery_outcome::kind::http_status ? rep.outcome.status : 0;
  if (d.action == core::delivery_action::dead_letter) {
    util::log::error("ingest refused a batch of " + std::to_string(sending_events()) + " events with " +
                     std::to_string(status) + "; written to " + custody_.dead_letter_path() + ", not retried");
    if (parts_.empty()) {
      if (custody_.dead_letter(*current_, status, rep.response_body, "rejected_batch")) {
        current_.reset();
        attempt_ = 0;
      } else {
        hold(d.at + (retry_.backoff.empty() ? std::chrono::milliseconds(1000) : retry_.backoff.front()));
      }
      return;
    }
    if (!custody_.dead_letter_events({{sending_body(), sending_events(), status, "rejected_batch", "", rep.response_body}})) {
      hold(d.at + (retry_.backoff.empty() ? std::chrono::milliseconds(1000) : retry_.backoff.front()));
      return;
    }
    part_done();
    return;
  }

  const std::string problem = d.action == core::delivery_action::unauthorized ? "unauthorized" : describe(rep);
  if (d.action == core::delivery_action::unauthorized) {
    // Logged by the status on every probe: at most once per retry.unauthorized_probe.
    status_.unauthorized(status);
  } else if (rep.outcome.what != core::delivery_outcome::kind::http_status) {
    // A timeout is reported as such even when the client saw it as another kind.
    status_.unreachable(rep.outcome.what == core::delivery_outcome::kind::timeout
                            ? net::client_result::error_kind::timeout
                            : rep.error,
                        rep.host, rep.error_message);
  } else if (problem != last_problem_) {
    util::log::warn("ingest " + problem + "; retrying with backoff");
  }
  last_problem_ = problem;
  if (!failing_) {
    failing_ = true;
    util::log::warn(memory_mode_ ? "buffering in memory: ingest " + problem
                                 : "ingest " + problem + ": keeping events in the disk spool");
  }

  not_before_ = d.at;
  if (d.action == core::delivery_action::retry) return;  // the same batch again at d.at
  // Retries exhausted, or unauthorized: the events wait in the spool; the next attempt at d.at
  // starts from the spool's head with a fresh retry count.
  hold(d.at);
}

void pipeline_deliverer::log_event_failures(const core::ingest_ack& ack, std::uint32_t events) {
  unlogged_event_failures_ += ack.failed;
  const auto now = clock::now();
  if (last_event_failure_log_ != clock::time_point{} && now - last_event_failure_log_ < event_failure_log_every) return;
  std::string line = "ingest refused " + std::to_string(unlogged_event_failures_) +
                     " event(s) one by one (not retried); latest batch: " + std::to_string(ack.failed) + " of " +
                     std::to_string(events);
  if (!ack.errors.empty()) {
    line += ", first: index " + std::to_string(ack.errors.front().index) + ": " + ack.errors.front().message;
  }
  util::log::warn(line);
  unlogged_event_failures_ = 0;
  last_event_failure_log_ = now;
}

void pipeline_deliverer::stop() {
  stopping_ = true;
  timer_.cancel();
  if (in_flight_) sender_.shutdown();
  parts_.clear();
  if (current_ && !custody_.keep(*current_)) {
    metrics_.dropped("shutdown_spool_full").inc(current_->events);
    util::log::error("shutdown: " + std::to_string(current_->events) +
                     " events in flight could not be written to the spool");
  }
  current_.reset();
}

}  // namespace aforo::app
