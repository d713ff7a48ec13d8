// Whether Aforo ingest takes lz4 bodies (batch.compression lz4), learnt from its answers: a pure
// decision (is this answer a refusal of the encoding?) and a small state (fall back to uncompressed,
// try lz4 again after an interval). The caller supplies the time; nothing here reads a clock.
#pragma once

#include <chrono>
#include <string_view>

namespace aforo::core {

/// Whether an answer to an lz4-compressed request refuses the encoding itself: 415, or a 400 whose
/// body names it ("encoding", as in Content-Encoding, or "lz4", any case). Any other 400 is about
/// the events (the batch is poison as before). Pure; thread-safe.
[[nodiscard]] bool is_encoding_refusal(int status, std::string_view body) noexcept;

/// The effective encoding of ingest requests when batch.compression is lz4. Starts on lz4; the first
/// refusal falls back to uncompressed until `retry_interval` has passed, then one request (the trial)
/// goes out compressed again: accepted, lz4 is back; refused, another interval uncompressed.
/// Answers to lz4 requests sent before a fallback change nothing (several batches are in flight).
/// Not thread-safe (the io thread owns it).
class encoding_fallback {
 public:
  using clock = std::chrono::steady_clock;

  /// What an answer changed, for the caller's log line.
  enum class change {
    none,           ///< nothing new (an lz4 request sent before the fallback, or lz4 still fine)
    fell_back,      ///< lz4 was in use and is refused: log once (WARN), send uncompressed
    still_refused,  ///< the trial after the interval was refused again: uncompressed for another interval
    restored,       ///< the trial was accepted: lz4 is in use again
  };

  explicit encoding_fallback(std::chrono::milliseconds retry_interval = std::chrono::minutes(10))
      : interval_(retry_interval) {}

  void set_retry_interval(std::chrono::milliseconds d) noexcept { interval_ = d; }
  [[nodiscard]] std::chrono::milliseconds retry_interval() const noexcept { return interval_; }

  /// Whether the request about to go out is compressed. While fallen back: false until the interval
  /// has passed, then true once (the trial; the others stay uncompressed until its answer).
  [[nodiscard]] bool use_lz4(clock::time_point now) noexcept;
  /// Ingest refused an lz4 request (is_encoding_refusal) at `now`.
  change refused(clock::time_point now) noexcept;
  /// Ingest took an lz4 request (any answer that is not a refusal of the encoding).
  change accepted() noexcept;
  /// An lz4 request got no answer (network error, timeout): a pending trial is made again at the
  /// next request.
  void inconclusive(clock::time_point now) noexcept;

  /// lz4 is in use (false from a refusal until a trial is accepted).
  [[nodiscard]] bool in_use() const noexcept { return state_ == state::lz4; }
  /// While fallen back: when the next trial may go out.
  [[nodiscard]] clock::time_point retry_at() const noexcept { return retry_at_; }

 private:
  enum class state { lz4, fallen_back, trying };
  state state_ = state::lz4;
  std::chrono::milliseconds interval_;
  clock::time_point retry_at_{};
};

}  // namespace aforo::core
