// Exact margin arithmetic; see margin_math.hpp.
#include "core/margin/margin_math.hpp"

#include <cmath>

namespace aforo::core::margin {

bool margin_below(micros revenue, micros cogs, std::int32_t threshold_bp) {
  if (revenue <= 0) return cogs > 0;
  const picos lhs = static_cast<picos>(revenue - cogs) * 10000;
  const picos rhs = static_cast<picos>(threshold_bp) * revenue;
  return lhs < rhs;
}

std::optional<std::int64_t> margin_bp(micros revenue, micros cogs) {
  if (revenue <= 0) return std::nullopt;
  const picos num = static_cast<picos>(revenue - cogs) * 10000;
  picos q = num / revenue;
  if (num % revenue != 0 && num < 0) --q;  // floor, not truncation toward zero
  return static_cast<std::int64_t>(q);
}

margin_level level_for(const guard& g, micros revenue, micros cogs) {
  if (g.level_3 && margin_below(revenue, cogs, g.level_3->threshold_bp)) return margin_level::l3;
  if (g.level_2 && margin_below(revenue, cogs, g.level_2->threshold_bp)) return margin_level::l2;
  if (g.level_1 && margin_below(revenue, cogs, g.level_1->threshold_bp)) return margin_level::l1;
  return margin_level::none;
}

std::int32_t threshold_of(const guard& g, margin_level level) {
  switch (level) {
    case margin_level::l1:
      return g.level_1 ? g.level_1->threshold_bp : 0;
    case margin_level::l2:
      return g.level_2 ? g.level_2->threshold_bp : 0;
    case margin_level::l3:
      return g.level_3 ? g.level_3->threshold_bp : 0;
    case margin_level::none:
      return 0;
  }
  return 0;
}

std::int64_t to_micros(double value) {
  if (!(value > 0) || !std::isfinite(value)) return 0;
  const double scaled = value * 1e6;
  if (scaled >= 9.2e18) return 0;
  return std::llround(scaled);
}

}  // namespace aforo::core::margin
