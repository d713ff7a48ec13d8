// The handshake's machines; see handshake.hpp.
#include "core/pipeline/handshake.hpp"

namespace aforo::core {

const char* to_string(ingest_state s) noexcept {
  switch (s) {
    case ingest_state::ok:
      return "ok";
    case ingest_state::unauthorized:
      return "unauthorized";
    case ingest_state::unreachable:
      return "unreachable";
    case ingest_state::unknown:
      break;
  }
  return "unknown";
}

probe_verdict judge_probe(int status) noexcept {
  if (status == 401 || status == 403) return probe_verdict::unauthorized;
  if ((status >= 200 && status < 300) || status == 400 || status == 422) return probe_verdict::accepted;
  return probe_verdict::inconclusive;
}

bool ingest_state_tracker::accepted() {
  state_ = ingest_state::ok;
  last_problem_.clear();
  if (confirmed_) return false;
  confirmed_ = true;
  return true;
}

bool ingest_state_tracker::unauthorized(std::string problem) {
  state_ = ingest_state::unauthorized;
  last_problem_ = std::move(problem);
  return true;
}

bool ingest_state_tracker::unreachable(std::string problem) {
  state_ = ingest_state::unreachable;
  if (problem == last_problem_) return false;
  last_problem_ = std::move(problem);
  return true;
}

handshake_step handshake_reprobe::probe() {
  in_flight_ = true;
  return {handshake_step::kind::probe, std::chrono::milliseconds(0), {}};
}

handshake_step handshake_reprobe::wait_for(std::chrono::milliseconds wait, std::chrono::steady_clock::time_point now) {
  waiting_ = true;
  return {handshake_step::kind::wait, wait, now + wait};
}

handshake_step handshake_reprobe::start(bool confirmed) {
  if (stopped_ || confirmed || in_flight_ || waiting_) return {};
  return probe();
}

handshake_step handshake_reprobe::on_answer(probe_verdict verdict, std::chrono::milliseconds unauthorized_probe,
                                            std::chrono::steady_clock::time_point now) {
  if (stopped_ || !in_flight_) return {};
  in_flight_ = false;
  switch (verdict) {
    case probe_verdict::accepted:
      backoff_.reset();
      return {handshake_step::kind::check_encoding, std::chrono::milliseconds(0), now};
    case probe_verdict::unauthorized:
      (void)backoff_.next();  // counted: a later missing answer waits as long as it would have
      return wait_for(unauthorized_probe, now);
    case probe_verdict::inconclusive:
      break;
  }
  return wait_for(backoff_.next(), now);
}

handshake_step handshake_reprobe::on_no_answer(std::chrono::steady_clock::time_point now) {
  if (stopped_ || !in_flight_) return {};
  in_flight_ = false;
  return wait_for(backoff_.next(), now);
}

handshake_step handshake_reprobe::on_aborted() {
  in_flight_ = false;
  return {};
}

handshake_step handshake_reprobe::on_timer(bool confirmed) {
  if (stopped_ || !waiting_) return {};
  waiting_ = false;
  if (confirmed) return {};
  return probe();
}

}  // namespace aforo::core
