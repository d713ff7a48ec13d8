// One level-change webhook per cluster (docs/design/margin-guard.md#shared)
// when the sidecars share Redis: the rule that decides which sidecar sends it, the claim script that
// applies the rule atomically in Redis, and the script's arguments. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/entitlements/redis_keys.hpp"
#include "core/margin/margin_guard.hpp"

namespace aforo::core::margin {

/// Whether a sidecar that saw a customer's level go `from` -> `to` under a guard sends the webhook,
/// given `notified`: the level whose webhook the cluster last sent for the same customer, guard and
/// revenue period (the notice, redis_keys::margin_notice), nullopt when none is recorded.
///
/// The rule: the cluster tells each level it enters once, in the direction it was entered.
/// - A worsening change (to deeper than from) is sent unless the cluster already told `to` or a
///   deeper level: a sidecar whose COGS view lags the others (by up to one sync) sees the same
///   crossing later, or sees an older, milder one (NONE -> L1 after another told L2); both are old news.
/// - A recovering change (to milder than from: a higher revenue, a guard edit, a new period) is sent
///   unless the cluster already told `to` or a milder level.
/// - So a level left and entered again within the period is told again: L1, then NONE (revenue
///   raised), then L1 (more cost) gives three webhooks, each sent once.
/// - Nothing recorded (the period's first change, or Redis restarted empty): sent. This errs toward
///   a duplicate rather than a lost webhook.
/// - from == to is no change: not sent.
/// Each sent change records `to` as the notice, whoever sent it.
[[nodiscard]] bool notice_due(std::optional<margin_level> notified, margin_level from, margin_level to);

/// The Lua script applying notice_due atomically: KEYS[1] = the notice key; ARGV[1] = to,
/// ARGV[2] = from (level numbers 0..3 = NONE..L3), ARGV[3] = the claiming sidecar's instance id,
/// ARGV[4] = the notice's time to live in ms. Returns 1 (claimed: the key now holds
/// "{to}:{instance}" and lives ARGV[4] ms) or 0 (told by the cluster already; the key is left as
/// it was). A value it cannot read counts as nothing recorded.
[[nodiscard]] std::string_view notice_claim_script();

/// The notice's time to live, ms: until 1 h after the end of the change's period (like the COGS
/// counters, so a late change of a just-ended period still finds its notice), at least 1 h from
/// `now` (unix seconds) when the period is unknown (no revenue) or already over.
[[nodiscard]] std::int64_t notice_ttl_ms(const level_change& c, std::int64_t now);

/// The EVAL arguments after the script: "1", the notice key, to, from, instance, ttl ms.
[[nodiscard]] std::vector<std::string> notice_claim_args(const level_change& c, const entitlements::redis_keys& keys,
                                                         std::string_view instance, std::int64_t now);

}  // namespace aforo::core::margin
