// How a level change is told: the log line and the webhook JSON body (docs/design/margin-guard.md#webhook).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/margin/margin_guard.hpp"

namespace aforo::core::margin {

/// "margin guard: cust_x L1 (margin 28.5% < 30%)", "margin guard: cust_x NONE (margin 35% >= 30%,
/// was L1)", "margin guard: cust_x L3 (revenue 0, cogs 1.5)"; the guard id and a non-enforce mode
/// follow in brackets: "[guard default, shadow]". Pure.
[[nodiscard]] std::string describe(const level_change& c);

/// The webhook body, compact JSON:
/// {"customer_id","level":"L1","previous_level":"NONE","margin_percent":28.5 (null when revenue is
///  0),"threshold_percent":30,"min_margin_percent":25 (omitted when unset),"revenue":2000,
///  "cogs":1430,"period":"2026-11","guard":"default","mode":"enforce","timestamp":1764201600}
/// Money is written as exact decimals (no float). `timestamp` is the send time (unix seconds),
/// the same as the X-Aforo-Timestamp header. Pure.
[[nodiscard]] std::string webhook_body(const level_change& c, std::int64_t timestamp);

/// The text that is signed: "<timestamp>.<body>".
[[nodiscard]] std::string signature_input(std::int64_t timestamp, std::string_view body);

}  // namespace aforo::core::margin
