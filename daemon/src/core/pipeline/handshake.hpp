// The startup handshake with Aforo ingest as pure machines (docs/design/ingest-contract.md#handshake):
// the ingest state that /v1/handshake and /readyz report, and when to probe the key again. The
// daemon's handshake service performs the steps with a timer and the ingest client.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/backoff.hpp"

namespace aforo::core {

enum class ingest_state { unknown, ok, unauthorized, unreachable };

/// "unknown" | "ok" | "unauthorized" | "unreachable" (the /v1/handshake values).
[[nodiscard]] const char* to_string(ingest_state s) noexcept;

/// The probe's verdict on one answer to `{"events":[]}`: 401/403 = the key is refused; 2xx, 400 and
/// 422 (Aforo checks the key before the body, so a validation error means the key passed) = accepted;
/// anything else (404, 429, 5xx) says nothing about the key.
enum class probe_verdict { accepted, unauthorized, inconclusive };
[[nodiscard]] probe_verdict judge_probe(int status) noexcept;

/// The ingest state as probes and deliveries report it, and which reports deserve a log line: the
/// first acceptance ("handshake ok"), every refusal (callers report one at most once per
/// retry.unauthorized_probe), and a missing answer whose description differs from the last problem.
/// Not thread-safe: one owner.
class ingest_state_tracker {
 public:
  [[nodiscard]] ingest_state state() const noexcept { return state_; }
  /// The key was accepted at least once since start.
  [[nodiscard]] bool confirmed() const noexcept { return confirmed_; }

  /// Ingest accepted the key. True the first time (log "handshake ok").
  bool accepted();
  /// Ingest refused the key; `problem` describes it. Always logged: returns true.
  bool unauthorized(std::string problem);
  /// No HTTP answer, described by `problem`. True when it differs from the last problem (log it).
  bool unreachable(std::string problem);

 private:
  ingest_state state_ = ingest_state::unknown;
  bool confirmed_ = false;
  std::string last_problem_;
};

/// What the handshake service does next.
struct handshake_step {
  enum class kind {
    none,            ///< nothing (confirmed, stopped, or an answer out of turn)
    probe,           ///< POST `{"events":[]}` to ingest now
    wait,            ///< arm the timer for `wait` (until `at`), then call on_timer
    check_encoding,  ///< the key was just confirmed by a probe: check the encoding once
  };
  kind what = kind::none;
  std::chrono::milliseconds wait{0};
  std::chrono::steady_clock::time_point at{};
};

/// When to probe the key: at start, then after each failed probe with core::backoff (1 s, 2 s,
/// 4 s ... capped at 60 s, counted over every failure since start), or `unauthorized_probe` after a
/// 401/403 (the key will not fix itself quickly), until the key is confirmed by a probe or by a
/// delivered batch. Not thread-safe: one owner.
class handshake_reprobe {
 public:
  handshake_reprobe() : backoff_(backoff_policy::exponential(std::chrono::seconds(1), std::chrono::seconds(60))) {}

  /// Start: probe unless the key is already `confirmed`.
  handshake_step start(bool confirmed);
  /// The probe in flight got an answer judged `verdict` at `now`; `unauthorized_probe` is the
  /// configured wait after a refusal (retry.unauthorized_probe, read at each refusal: reloads apply).
  handshake_step on_answer(probe_verdict verdict, std::chrono::milliseconds unauthorized_probe,
                           std::chrono::steady_clock::time_point now);
  /// The probe in flight got no answer (network error, timeout, TLS) at `now`.
  handshake_step on_no_answer(std::chrono::steady_clock::time_point now);
  /// The probe was cancelled (the client shut down): nothing follows.
  handshake_step on_aborted();
  /// The wait ended: probe again unless the key was `confirmed` meanwhile (by a delivery).
  handshake_step on_timer(bool confirmed);
  /// Shutdown: every later event returns none.
  void stop() noexcept { stopped_ = true; }

  /// Failed probes since start (reset when a probe confirms the key).
  [[nodiscard]] std::uint32_t failures() const noexcept { return backoff_.failures(); }

 private:
  handshake_step probe();
  handshake_step wait_for(std::chrono::milliseconds wait, std::chrono::steady_clock::time_point now);

  backoff backoff_;
  bool in_flight_ = false;
  bool waiting_ = false;
  bool stopped_ = false;
};

}  // namespace aforo::core
