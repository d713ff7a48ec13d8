// Hand-built JSON bodies (decisions, errors, readiness): writing a string as a JSON string literal.
#pragma once

#include <string>
#include <string_view>

namespace aforo::core::json {

/// Appends s as a JSON string literal (quotes included, control characters escaped).
void append_json_string(std::string& out, std::string_view s);

}  // namespace aforo::core::json
