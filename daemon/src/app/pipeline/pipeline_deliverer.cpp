// The usage pipeline's delivery loop; see pipeline_deliverer.hpp.
#include "app/pipeline/pipeline_deliverer.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "core/backoff.hpp"
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
    case core::delivery_outcome::kind::timeout:
      return "network timeout to " + rep.host;
    case core::delivery_outcome::kind::network_error:
      return "unreachable at " + rep.host + ": " + rep.error_message;
    case core::delivery_outcome::kind::http_status:
      break;
  }
  return "answered " + std::to_string(rep.outcome.status);
}

core::concurrency_limit::options limit_options(const config::sidecar_config& cfg) {
  core::concurrency_limit::options o;
  o.max = std::max<std::uint32_t>(cfg.batch.max_concurrency, 1);
  o.adaptive = cfg.batch.adaptive_concurrency;
  return o;
}

/// What an answer says to the concurrency limit: timeouts, 429 and 503 are capacity signals; network
/// errors and other 5xx say ingest is down or broken (back off, keep the ceiling).
core::concurrency_limit::outcome limit_outcome(const core::delivery_outcome& o) {
  using out = core::concurrency_limit::outcome;
  if (o.what == core::delivery_outcome::kind::timeout) return out::overloaded;
  if (o.what != core::delivery_outcome::kind::http_status) return out::failed;
  if (o.status == 429 || o.status == 503) return out::overloaded;
  if (o.status >= 500) return out::failed;
  return out::ok;
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
      limit_(limit_options(cfg)),
      max_concurrency_(std::max<std::uint32_t>(cfg.batch.max_concurrency, 1)),
      timer_(ioc),
      rng_(std::random_device{}()) {
  publish();
}

pipeline_deliverer::~pipeline_deliverer() { alive_.end(); }

void pipeline_deliverer::reload(const config::sidecar_config& cfg) {
  retry_ = retry_of(cfg);
  sender_.set_compression(cfg.batch.codec, cfg.batch.compression_retry);
  kick();
}

pipeline_deliverer::state pipeline_deliverer::current() const {
  return {limit_.limit(), max_concurrency_, in_flight_, limit_.min_rtt()};
}

void pipeline_deliverer::publish() {
  metrics_.concurrency_limit.set(limit_.limit());
  metrics_.in_flight.set(in_flight_);
}

void pipeline_deliverer::kick() {
  if (stopping_) return;
  pump();
}

void pipeline_deliverer::arm(clock::time_point at) {
  if (armed_for_ && *armed_for_ <= at) return;  // woken earlier anyway: pump re-arms
  armed_for_ = at;
  timer_.expires_at(at);
  timer_.async_wait([this, alive = alive_.watch()](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    armed_for_.reset();
    pump();
  });
}

void pipeline_deliverer::pump() {
  if (stopping_) return;
  const auto now = clock::now();
  std::optional<clock::time_point> wake;
  const auto wake_at = [&](clock::time_point t) {
    if (!wake || t < *wake) wake = t;
  };
  // Flights waiting for a retry first, oldest first: they hold the acknowledgement window.
  for (auto& f : flights_) {
    if (f.state.in_flight()) continue;
    if (!f.state.due(now)) {
      wake_at(f.state.not_before());
      continue;
    }
    if (!limit_.may_send(in_flight_, now)) break;
    send(f, now);
  }
  // New batches while there is room and ingest is not failing (then one, once nothing else is out).
  const bool may_cut = (!failing_ || flights_.empty()) && now >= resume_at_;
  if (!may_cut && now < resume_at_) wake_at(resume_at_);
  // A flight waiting for its retry holds no request slot: the others go on (spool batches up to the
  // acknowledgement window, which custody keeps; at most twice max_concurrency flights in all).
  const auto room = [&] { return flights_.size() < 2 * std::size_t{max_concurrency_}; };
  while (may_cut && room() && limit_.may_send(in_flight_, now) && (!failing_ || flights_.empty())) {
    auto b = custody_.next_due(now);
    if (!b) break;
    const auto events = b->events;
    flights_.push_back(flight{std::move(*b), core::delivery_flight(events)});
    send(flights_.back(), now);
  }
  if (auto held = limit_.held_until(now)) wake_at(*held);
  if (may_cut && room() && in_flight_ < limit_.limit()) {
    if (auto at = custody_.next_deadline()) wake_at(std::max(*at, now));
  }
  publish();
  if (wake) arm(*wake);
}

void pipeline_deliverer::send(flight& f, clock::time_point now) {
  ++in_flight_;
  if (f.state.sent(now, in_flight_)) metrics_.retries.inc();
  sender_.send(sending_body(f), [this, fp = &f, alive = alive_.watch()](send_report rep) {
    if (alive.expired()) return;
    on_report(*fp, std::move(rep));
  });
}

const std::string& pipeline_deliverer::sending_body(const flight& f) {
  return f.state.whole() ? f.batch.body : f.state.front().body;
}

void pipeline_deliverer::on_report(flight& f, send_report rep) {
  if (stopping_) return;  // the flight is gone (stop() handed it back)
  f.state.answered();
  --in_flight_;
  const auto now = clock::now();
  metrics_.ingest_rtt.observe(std::chrono::duration<double>(now - f.state.sent_at()).count());
  limit_.record(limit_outcome(rep.outcome), f.state.sent_at(), f.state.level(), now, rep.outcome.retry_after);
  if (rep.encoding_refused) {
    // Ingest does not take lz4: the sender has fallen back; the same body goes again, uncompressed,
    // at once and without counting an attempt (it is not poison, and nothing failed for it).
    f.state.resend_now(now);
    pump();
    return;
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const auto d = core::decide_delivery(rep.outcome, f.state.attempt(), retry_, unit(rng_), now);
  if (d.action == core::delivery_action::done) {
    on_delivered(f, rep);
  } else if (d.action == core::delivery_action::split) {
    on_too_large(f, rep);
  } else {
    on_failure(f, rep, d);
  }
  if (f.state.finished()) {
    flights_.remove_if([&f](const flight& x) { return &x == &f; });
  }
  pump();
}

void pipeline_deliverer::part_done(flight& f) {
  if (f.state.part_done()) custody_.delivered(f.batch);  // else the next part goes out at once
}

void pipeline_deliverer::hold(flight& f, clock::time_point at) {
  // The parts already delivered are sent again with the rest: Aforo deduplicates them by key.
  f.state.hold(at);
  if (!f.batch.from_spool && custody_.keep(f.batch)) {
    f.state.finish();  // a memory batch: to the spool, sent from there
    resume_at_ = std::max(resume_at_, at);
  }
}

bool pipeline_deliverer::keep_refused(const flight& f, const send_report& rep) {
  const auto events = f.state.sending_events();
  const auto refused = core::refused_in(*rep.ack, events);
  if (refused.events.empty() && refused.unidentified == 0) return true;
  const int status = rep.outcome.status;
  const std::string_view stamp;  // the dead-letter file stamps the time
  const auto split = core::split_batch_body(sending_body(f));
  std::vector<std::string> bodies;
  std::vector<io::dead_letter_entry> entries;
  if (refused.unidentified != 0 || !split || split->size() != events) {
    // Failures without an index (or a body of another shape): the whole request, with ingest's answer.
    entries.push_back({sending_body(f), events, status, "event_failed", stamp, rep.response_body});
  } else {
    bodies.reserve(refused.events.size());
    for (const auto& r : refused.events) bodies.push_back(core::join_events(*split, r.index, r.index + 1));
    for (std::size_t i = 0; i < refused.events.size(); ++i) {
      const auto& r = refused.events[i];
      entries.push_back({bodies[i], 1, status, r.listed ? "event_failed" : "success_false", stamp, r.message});
    }
  }
  return custody_.dead_letter_events(entries);
}

void pipeline_deliverer::on_delivered(flight& f, const send_report& rep) {
  const auto events = f.state.sending_events();
  std::uint64_t failed = 0;
  if (rep.ack) {
    if (!keep_refused(f, rep)) {
      hold(f, clock::now() + core::backoff_delay(core::backoff_policy::schedule(retry_.backoff), 1));
      return;
    }
    failed = std::min<std::uint64_t>(rep.ack->success ? rep.ack->failed : events - rep.ack->accepted, events);
    metrics_.duplicates.inc(rep.ack->duplicates);
    if (failed != 0) log_event_failures(*rep.ack, events);
  }
  metrics_.delivered.inc(events - failed);
  metrics_.ingest_failed.inc(failed);
  part_done(f);
  status_.accepted(rep.host);
  if (failing_) {
    failing_ = false;
    last_problem_.clear();
    util::log::info(custody_.spool_events() > 0 ? "ingest recovered, draining disk spool first" : "ingest recovered");
  }
}

void pipeline_deliverer::dead_letter_sending(flight& f, int status, const send_report& rep, std::string_view reason,
                                             clock::time_point retry_at) {
  const bool whole = f.state.whole();
  const bool ok = whole ? custody_.dead_letter(f.batch, status, rep.response_body, reason)
                        : custody_.dead_letter_events(
                              {{sending_body(f), f.state.sending_events(), status, reason, "", rep.response_body}});
  if (!ok) {
    hold(f, retry_at);
    return;
  }
  if (whole) {
    f.state.finish();  // dead_letter acked it
    return;
  }
  part_done(f);
}

void pipeline_deliverer::on_too_large(flight& f, const send_report& rep) {
  const auto events = f.state.sending_events();
  auto split = core::split_batch_body(sending_body(f));
  if (events <= 1 || !split || split->size() <= 1) {
    // One event ingest will not take: poison.
    util::log::error("ingest refused a single event as too large (413); written to " + custody_.dead_letter_path());
    dead_letter_sending(f, 413, rep, "too_large", clock::now() + std::chrono::seconds(1));
    return;
  }
  metrics_.ingest_splits.inc();
  custody_.limit_request_events(events);
  const std::size_t half = split->size() / 2;
  f.state.split({core::join_events(*split, 0, half), static_cast<std::uint32_t>(half)},
                {core::join_events(*split, half, split->size()), static_cast<std::uint32_t>(split->size() - half)});
}

void pipeline_deliverer::on_failure(flight& f, const send_report& rep, const core::retry_decision& d) {
  const int status = rep.outcome.what == core::delivery_outcome::kind::http_status ? rep.outcome.status : 0;
  if (d.action == core::delivery_action::dead_letter) {
    util::log::error("ingest refused a batch of " + std::to_string(f.state.sending_events()) + " events with " +
                     std::to_string(status) + "; written to " + custody_.dead_letter_path() + ", not retried");
    dead_letter_sending(f, status, rep, "rejected_batch",
                        d.at + (retry_.backoff.empty() ? std::chrono::milliseconds(1000) : retry_.backoff.front()));
    return;
  }

  const std::string problem = d.action == core::delivery_action::unauthorized ? "unauthorized" : describe(rep);
  if (d.action == core::delivery_action::unauthorized) {
    // Logged by the status on every probe: at most once per retry.unauthorized_probe.
    status_.unauthorized(status);
  } else if (rep.outcome.what != core::delivery_outcome::kind::http_status) {
    // A timeout is reported as such even when the client saw it as another kind.
    status_.unreachable(
        rep.outcome.what == core::delivery_outcome::kind::timeout ? io::client_result::error_kind::timeout : rep.error,
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

  f.state.retry_at(d.at);
  if (d.action == core::delivery_action::retry) return;  // the same part again at d.at
  // Retries exhausted, or unauthorized: a spool batch waits in the spool for d.at with a fresh
  // retry count; a memory batch goes to the spool.
  hold(f, d.at);
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
  if (in_flight_ != 0) sender_.shutdown();
  std::uint64_t lost = 0;
  for (auto& f : flights_) {
    if (!f.batch.from_spool && !custody_.keep(f.batch)) lost += f.batch.events;
  }
  if (lost != 0) {
    metrics_.dropped("shutdown_spool_full").inc(lost);
    util::log::error("shutdown: " + std::to_string(lost) + " events in flight could not be written to the spool");
  }
  flights_.clear();
  in_flight_ = 0;
  publish();
}

}  // namespace aforo::app
