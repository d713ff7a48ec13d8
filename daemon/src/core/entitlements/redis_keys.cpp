// Key names of the Redis edge cache; see redis_keys.hpp.
#include "core/entitlements/redis_keys.hpp"

namespace aforo::core::entitlements {

redis_keys::redis_keys(std::string_view tenant) {
  prefix_ = "aforo:";
  prefix_.append(tenant.empty() ? std::string_view("_") : tenant);
  prefix_.push_back(':');
}

std::string redis_keys::counter(std::string_view set, std::string_view counter_key) const {
  std::string k;
  k.reserve(prefix_.size() + set.size() + 1 + counter_key.size());
  k.append(prefix_).append(set).append(":").append(counter_key);
  return k;
}

std::optional<std::string_view> redis_keys::counter_key_of(std::string_view redis_key) const {
  if (redis_key.size() <= prefix_.size() + 2 || redis_key.substr(0, prefix_.size()) != prefix_ ||
      redis_key.substr(prefix_.size(), 2) != "q:") {
    return std::nullopt;
  }
  return redis_key.substr(prefix_.size() + 2);
}

std::string redis_keys::margin_notice(std::string_view customer, std::string_view guard,
                                      std::string_view period) const {
  std::string k;
  k.reserve(prefix_.size() + 6 + customer.size() + guard.size() + period.size());
  k.append(prefix_).append("mn:").append(customer).append(":").append(guard).append(":").append(period);
  return k;
}

std::string redis_keys::snapshot_version() const { return prefix_ + "ent:version"; }

std::string redis_keys::snapshot_hash_prefix() const { return prefix_ + "ent:v:"; }

std::string redis_keys::snapshot_hash(std::string_view version) const {
  return snapshot_hash_prefix() + std::string(version);
}

std::string redis_keys::publish_lock() const { return prefix_ + "ent:lock"; }

}  // namespace aforo::core::entitlements
