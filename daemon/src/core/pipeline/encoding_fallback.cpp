// lz4 fallback policy; see encoding_fallback.hpp.
#include "core/pipeline/encoding_fallback.hpp"

#include <algorithm>
#include <cctype>

namespace aforo::core {
namespace {

bool contains_ci(std::string_view hay, std::string_view needle) noexcept {
  const auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

}  // namespace

bool is_encoding_refusal(int status, std::string_view body) noexcept {
  if (status == 415) return true;
  return status == 400 && (contains_ci(body, "encoding") || contains_ci(body, "lz4"));
}

bool encoding_fallback::use_lz4(clock::time_point now) noexcept {
  switch (state_) {
    case state::lz4:
      return true;
    case state::trying:
      return false;  // the trial is out: the others wait for its answer uncompressed
    case state::fallen_back:
      break;
  }
  if (now < retry_at_) return false;
  state_ = state::trying;
  return true;
}

encoding_fallback::change encoding_fallback::refused(clock::time_point now) noexcept {
  switch (state_) {
    case state::lz4:
      state_ = state::fallen_back;
      retry_at_ = now + interval_;
      return change::fell_back;
    case state::trying:
      state_ = state::fallen_back;
      retry_at_ = now + interval_;
      return change::still_refused;
    case state::fallen_back:
      break;  // sent before the fallback: already handled
  }
  return change::none;
}

encoding_fallback::change encoding_fallback::accepted() noexcept {
  if (state_ != state::trying) return change::none;  // lz4 in use, or an answer from before the fallback
  state_ = state::lz4;
  return change::restored;
}

void encoding_fallback::inconclusive(clock::time_point now) noexcept {
  if (state_ != state::trying) return;
  state_ = state::fallen_back;
  retry_at_ = now;
}

}  // namespace aforo::core
