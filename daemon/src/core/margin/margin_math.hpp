// Margin arithmetic in exact integers: margin % = (revenue - COGS) / revenue x 100, compared with
// thresholds without floating point, and the cost of metered usage in micro-units.
#pragma once

#include <cstdint>
#include <optional>

#include "core/entitlements/decision.hpp"
#include "core/entitlements/money.hpp"
#include "core/margin/guard_config.hpp"

namespace aforo::core::margin {

using entitlements::margin_level;
using entitlements::micros;

/// Whether the margin is strictly below threshold_bp (basis points):
/// (revenue - cogs) x 10000 < threshold_bp x revenue, in 128-bit integers (no float drift).
/// Revenue 0 (an explicit zero in the snapshot, e.g. a free plan): margin is undefined; with
/// cogs > 0 every dollar spent is a loss, so it is below every threshold; with cogs 0 it is below
/// none. Missing revenue never reaches here: the guard does not apply (see margin_guard).
/// Revenue and cogs are >= 0.
[[nodiscard]] bool margin_below(micros revenue, micros cogs, std::int32_t threshold_bp);

/// The margin in basis points, rounded toward negative infinity (so a displayed 29.99% is never
/// shown as 30%); nullopt when revenue is 0. Can be negative (cost above revenue).
[[nodiscard]] std::optional<std::int64_t> margin_bp(micros revenue, micros cogs);

/// The deepest configured level whose threshold the margin is below (L3 before L2 before L1).
[[nodiscard]] margin_level level_for(const guard& g, micros revenue, micros cogs);

/// The threshold of a configured level in basis points (0 for none or an unconfigured level).
[[nodiscard]] std::int32_t threshold_of(const guard& g, margin_level level);

/// A cost in pico-units (micro x micro: 10^-12 of the currency), exact for the product of a
/// quantity in micro-units and a unit cost in micro-units.
__extension__ typedef __int128 picos;  // GCC/Clang 128-bit integer (pedantic-clean)

/// quantity (micro-units of the metric) x unit_cost (micro-units of currency per unit), exactly.
[[nodiscard]] inline picos usage_cost_picos(std::int64_t quantity_micros, micros unit_cost) {
  return static_cast<picos>(quantity_micros) * unit_cost;
}

/// A double from a JSON number (an event's quantity or metadata.cost) in micro-units, rounded to
/// the nearest micro-unit once at the edge (exact for values with <= 6 decimals below ~9e9);
/// negative, NaN or out-of-range values give 0.
[[nodiscard]] std::int64_t to_micros(double value);

}  // namespace aforo::core::margin
