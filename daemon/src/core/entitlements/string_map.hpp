// A std::string-keyed hash map that can be searched with a std::string_view without allocating.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace aforo::core::entitlements {

/// Transparent hash so find(std::string_view) does not build a std::string.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class T>
using string_map = std::unordered_map<std::string, T, string_hash, std::equal_to<>>;

}  // namespace aforo::core::entitlements
