// Snapshot enums and the subscription status rule.
#include "core/entitlements/snapshot.hpp"

namespace aforo::core::entitlements {

std::string_view to_string(customer_status s) {
  switch (s) {
    case customer_status::active:
      return "active";
    case customer_status::trialing:
      return "trialing";
    case customer_status::past_due:
      return "past_due";
    case customer_status::suspended:
      return "suspended";
    case customer_status::cancelled:
      return "cancelled";
  }
  return "active";
}

std::optional<customer_status> parse_customer_status(std::string_view text) {
  if (text == "active") return customer_status::active;
  if (text == "trialing") return customer_status::trialing;
  if (text == "past_due") return customer_status::past_due;
  if (text == "suspended") return customer_status::suspended;
  if (text == "cancelled") return customer_status::cancelled;
  return std::nullopt;
}

bool customer::subscription_active(std::int64_t now) const {
  switch (status) {
    case customer_status::active:
    case customer_status::trialing:
      return true;
    case customer_status::past_due:
      return !grace_until || now < *grace_until;
    case customer_status::suspended:
    case customer_status::cancelled:
      return false;
  }
  return false;
}

}  // namespace aforo::core::entitlements
