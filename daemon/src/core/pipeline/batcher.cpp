// Batcher: FIFO memory buffer and batch cutting by count or deadline.
#include "core/pipeline/batcher.hpp"

#include <algorithm>

namespace aforo::core {
namespace {
constexpr std::string_view body_prefix = R"({"events":[)";
constexpr std::string_view body_suffix = "]}";
constexpr std::size_t max_ingest_batch = 1000;  // Aforo's limit per request (docs/design/ingest-contract.md#delivery)
}  // namespace

batch_body_builder::batch_body_builder(std::size_t reserve_bytes) {
  body_.reserve(reserve_bytes + body_prefix.size() + body_suffix.size());
  body_.append(body_prefix);
}

void batch_body_builder::add_event(std::string_view event_json) {
  if (events_ != 0) body_.push_back(',');
  body_.append(event_json);
  ++events_;
}

bool batch_body_builder::add_body(std::string_view body, std::uint32_t event_count) {
  if (body.size() < body_prefix.size() + body_suffix.size() || body.substr(0, body_prefix.size()) != body_prefix ||
      body.substr(body.size() - body_suffix.size()) != body_suffix) {
    return false;
  }
  const auto inner = body.substr(body_prefix.size(), body.size() - body_prefix.size() - body_suffix.size());
  if (inner.empty()) return event_count == 0;
  if (events_ != 0) body_.push_back(',');
  body_.append(inner);
  events_ += event_count;
  return true;
}

std::string batch_body_builder::finish() {
  body_.append(body_suffix);
  std::string out = std::move(body_);
  body_.clear();
  body_.append(body_prefix);
  events_ = 0;
  return out;
}

std::string event_batch::body() const {
  batch_body_builder b(json_bytes + events.size());
  for (const auto& e : events) b.add_event(e);
  return b.finish();
}

batcher::batcher(options opts) : opts_(opts) {
  opts_.max_batch_events = std::clamp<std::size_t>(opts_.max_batch_events, 1, max_ingest_batch);
  opts_.max_buffered_events = std::max<std::size_t>(opts_.max_buffered_events, 1);
}

bool batcher::push(std::string&& event_json, pipeline_clock::time_point now) {
  if (full()) return false;
  queue_.push_back({std::move(event_json), now});
  return true;
}

std::size_t batcher::room() const noexcept {
  return queue_.size() >= opts_.max_buffered_events ? 0 : opts_.max_buffered_events - queue_.size();
}

std::optional<pipeline_clock::time_point> batcher::next_deadline() const {
  if (queue_.empty()) return std::nullopt;
  if (queue_.size() >= opts_.max_batch_events) return pipeline_clock::time_point::min();
  return queue_.front().arrived + opts_.flush_interval;
}

std::optional<event_batch> batcher::take_ready(pipeline_clock::time_point now) {
  const auto due = next_deadline();
  if (!due || now < *due) return std::nullopt;
  return cut(std::min(queue_.size(), opts_.max_batch_events));
}

std::optional<event_batch> batcher::take_any() {
  if (queue_.empty()) return std::nullopt;
  return cut(std::min(queue_.size(), opts_.max_batch_events));
}

event_batch batcher::cut(std::size_t n) {
  event_batch b;
  b.events.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    b.json_bytes += queue_.front().json.size();
    b.events.push_back(std::move(queue_.front().json));
    queue_.pop_front();
  }
  return b;
}

}  // namespace aforo::core
