// See bounded_parse.hpp.
#include "core/json/bounded_parse.hpp"

#include <rapidjson/error/en.h>

namespace aforo::core::json {

std::string too_deep_message(unsigned limit) { return "JSON nested deeper than " + std::to_string(limit) + " levels"; }

std::string parse_outcome::message() const {
  if (too_deep) return too_deep_message(limit);
  if (!result.IsError()) return {};
  return "malformed JSON at offset " + std::to_string(result.Offset()) + ": " +
         rapidjson::GetParseError_En(result.Code());
}

}  // namespace aforo::core::json
