// A bounded least-recently-used cache whose entries remember when they were fetched, so a lookup
// can say hit, stale (serve it and refresh in the background) or miss.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <unordered_map>
#include <utility>

namespace aforo::core::entitlements {

enum class cache_state : unsigned char { hit, stale, miss };

/// "hit" | "stale" | "miss" (the `cache` field of a /v1/check answer).
[[nodiscard]] constexpr const char* to_string(cache_state s) {
  return s == cache_state::hit ? "hit" : s == cache_state::stale ? "stale" : "miss";
}

/// LRU map of at most `capacity` entries; lookup, put and erase are O(1) on average.
/// Time is passed in (any std::chrono time_point type), never read from a clock.
/// Lookups with a type other than Key need Hash and KeyEqual to be transparent.
/// Not thread-safe: one owner (the io thread) uses it.
template <class Key, class Value, class Hash = std::hash<Key>, class KeyEqual = std::equal_to<>,
          class TimePoint = std::chrono::steady_clock::time_point>
class lru_cache {
 public:
  using time_point = TimePoint;
  using duration = typename TimePoint::duration;

  struct lookup_result {
    cache_state state = cache_state::miss;
    Value* value = nullptr;  ///< null on a miss; valid until the next put/erase/clear

    explicit operator bool() const { return value != nullptr; }
  };

  /// capacity 0 is treated as 1.
  explicit lru_cache(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) { index_.reserve(capacity_); }

  /// hit when fetched at most `ttl` before `now`, stale when older (still returned: serve it and
  /// refresh), miss when absent. A hit or stale entry becomes the most recently used.
  template <class K>
  lookup_result lookup(const K& key, time_point now, duration ttl) {
    auto it = index_.find(key);
    if (it == index_.end()) return {};
    order_.splice(order_.begin(), order_, it->second);
    entry& e = *it->second;
    return {now - e.fetched_at > ttl ? cache_state::stale : cache_state::hit, &e.value};
  }

  /// Inserts or replaces; the entry becomes the most recently used. Evicts the least recently
  /// used entry when full. Returns the stored value.
  Value& put(const Key& key, Value value, time_point fetched_at) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      it->second->value = std::move(value);
      it->second->fetched_at = fetched_at;
      return it->second->value;
    }
    if (index_.size() >= capacity_) {
      index_.erase(order_.back().key);
      order_.pop_back();
      ++evictions_;
    }
    order_.push_front(entry{key, std::move(value), fetched_at});
    index_.emplace(key, order_.begin());
    return order_.front().value;
  }

  /// Removes the entry; false when absent.
  template <class K>
  bool erase(const K& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }

  void clear() {
    index_.clear();
    order_.clear();
  }

  [[nodiscard]] std::size_t size() const { return index_.size(); }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  /// Entries evicted to make room since construction.
  [[nodiscard]] std::size_t evictions() const { return evictions_; }

 private:
  struct entry {
    Key key;
    Value value;
    time_point fetched_at;
  };
  using list_type = std::list<entry>;

  std::size_t capacity_;
  std::size_t evictions_ = 0;
  list_type order_;  // front = most recently used
  std::unordered_map<Key, typename list_type::iterator, Hash, KeyEqual> index_;
};

}  // namespace aforo::core::entitlements
