// The cache in front of Aforo's decision endpoints, as a pure state machine over time passed in:
// one upstream call per key per expiry (single-flight), a refresh started before expiry while the
// key is in use, and the last answer served while the upstream fails (stale-while-error).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace aforo::core::aforo_api {

struct cache_policy {
  std::int64_t ttl_ms = 1000;          ///< an answer is fresh this long after it arrived
  std::int64_t refresh_percent = 75;   ///< a lookup this far into the TTL starts a background refresh
  std::int64_t error_retry_ms = 1000;  ///< after a failed call, the key is not asked again before this
  std::int64_t max_stale_ms = 0;       ///< an expired answer serves at most this long; 0 = until a call succeeds
  std::size_t capacity = 100000;       ///< keys kept; sweep() drops idle ones past it
};

/// What the caller does for one lookup.
template <class T>
struct cache_step {
  std::shared_ptr<const T> value;  ///< the answer to serve (fresh or stale); null = none usable
  bool fresh = false;              ///< value is within its TTL
  bool start_fetch = false;        ///< the caller must call upstream now (and report fetched/failed)
  /// A call is in flight and the caller should wait for it (bounded); when the wait ends first it
  /// serves value (stale) or, when null, answers that no decision is available.
  bool wait = false;
};

/// Threading: one thread (the io thread); not thread-safe.
template <class T>
class answer_cache {
 public:
  explicit answer_cache(cache_policy p = {}) : policy_(p) {}
  void set_policy(cache_policy p) { policy_ = p; }
  [[nodiscard]] const cache_policy& policy() const { return policy_; }

  /// One lookup at now_ms. Marks the key as fetching when start_fetch is returned.
  cache_step<T> lookup(const std::string& key, std::int64_t now_ms) {
    entry& e = entries_[key];
    e.used_ms = now_ms;
    cache_step<T> s;
    const bool may_call = !e.fetching && now_ms >= e.retry_ms;
    const bool usable =
        e.value && (now_ms < e.expires_ms || policy_.max_stale_ms <= 0 || now_ms - e.expires_ms < policy_.max_stale_ms);
    if (usable && now_ms < e.expires_ms) {
      s.value = e.value;
      s.fresh = true;
      s.start_fetch = may_call && now_ms >= e.refresh_ms;
    } else if (usable) {
      // Expired: serve it while the upstream fails; otherwise wait (bounded) for the new answer.
      s.value = e.value;
      s.start_fetch = may_call;
      s.wait = !e.failing && (e.fetching || may_call);
    } else {
      s.start_fetch = may_call;
      s.wait = e.fetching || may_call;
    }
    if (s.start_fetch) e.fetching = true;
    return s;
  }

  /// The call for key answered: the answer is fresh from now_ms for ttl_ms (the policy's by default).
  void fetched(const std::string& key, std::shared_ptr<const T> value, std::int64_t now_ms, std::int64_t ttl_ms = -1) {
    entry& e = entries_[key];
    if (ttl_ms < 0) ttl_ms = policy_.ttl_ms;
    e.value = std::move(value);
    e.fetching = false;
    e.failing = false;
    e.retry_ms = 0;
    e.expires_ms = now_ms + ttl_ms;
    e.refresh_ms = now_ms + ttl_ms * policy_.refresh_percent / 100;
  }

  /// The call for key failed (network, status, unusable body).
  void failed(const std::string& key, std::int64_t now_ms) {
    entry& e = entries_[key];
    e.fetching = false;
    e.failing = true;
    e.retry_ms = now_ms + policy_.error_retry_ms;
  }

  /// The answer a waiting check may use at now_ms: fresh, or expired within max_stale (null if none).
  [[nodiscard]] std::shared_ptr<const T> usable(const std::string& key, std::int64_t now_ms, bool& fresh) const {
    fresh = false;
    const auto it = entries_.find(key);
    if (it == entries_.end() || !it->second.value) return nullptr;
    const entry& e = it->second;
    fresh = now_ms < e.expires_ms;
    if (fresh || policy_.max_stale_ms <= 0 || now_ms - e.expires_ms < policy_.max_stale_ms) return e.value;
    return nullptr;
  }

  /// The value held for key, fresh or not (tests, metrics).
  [[nodiscard]] std::shared_ptr<const T> peek(const std::string& key) const {
    const auto it = entries_.find(key);
    return it == entries_.end() ? nullptr : it->second.value;
  }

  /// Drops keys unused for idle_ms and not fetching; while over capacity, drops the least recently
  /// used ones too. Returns how many were dropped.
  std::size_t sweep(std::int64_t now_ms, std::int64_t idle_ms) {
    std::size_t dropped = 0;
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (!it->second.fetching && now_ms - it->second.used_ms > idle_ms) {
        it = entries_.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
    if (entries_.size() <= policy_.capacity) return dropped;
    // Over capacity: drop the least recently used keys not fetching, down to capacity (O(n log n)).
    std::vector<std::pair<std::int64_t, const std::string*>> idle;
    for (const auto& [key, e] : entries_)
      if (!e.fetching) idle.emplace_back(e.used_ms, &key);
    const std::size_t excess = std::min(entries_.size() - policy_.capacity, idle.size());
    std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(excess), idle.end());
    std::vector<std::string> doomed;
    doomed.reserve(excess);
    for (std::size_t i = 0; i < excess; ++i) doomed.push_back(*idle[i].second);
    for (const auto& k : doomed) entries_.erase(k);
    return dropped + excess;
  }

  [[nodiscard]] std::size_t size() const { return entries_.size(); }

 private:
  struct entry {
    std::shared_ptr<const T> value;
    std::int64_t expires_ms = 0;
    std::int64_t refresh_ms = 0;
    std::int64_t retry_ms = 0;
    std::int64_t used_ms = 0;
    bool fetching = false;
    bool failing = false;
  };
  cache_policy policy_;
  std::unordered_map<std::string, entry> entries_;
};

}  // namespace aforo::core::aforo_api
