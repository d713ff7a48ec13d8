// JSON -> neutral tree with RapidJSON (numbers as strings, so money stays exact) -> snapshot.
#include "core/entitlements/snapshot_json.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "core/entitlements/snapshot_builder.hpp"
#include "core/json/bounded_parse.hpp"

namespace aforo::core::entitlements {

namespace {

constexpr unsigned max_depth = 32;

bool convert(const rapidjson::Value& v, doc_node& out, unsigned depth) {
  if (depth > max_depth) return false;
  switch (v.GetType()) {
    case rapidjson::kNullType:
      out.type = doc_node::kind::null;
      return true;
    case rapidjson::kFalseType:
      out.type = doc_node::kind::scalar;
      out.text = "false";
      return true;
    case rapidjson::kTrueType:
      out.type = doc_node::kind::scalar;
      out.text = "true";
      return true;
    case rapidjson::kStringType:
    case rapidjson::kNumberType:  // numbers arrive as strings (kParseNumbersAsStringsFlag)
      out.type = doc_node::kind::scalar;
      out.text.assign(v.GetString(), v.GetStringLength());
      return true;
    case rapidjson::kObjectType:
      out.type = doc_node::kind::map;
      out.keys.reserve(v.MemberCount());
      out.children.resize(v.MemberCount());
      {
        std::size_t i = 0;
        for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it, ++i) {
          out.keys.emplace_back(it->name.GetString(), it->name.GetStringLength());
          if (!convert(it->value, out.children[i], depth + 1)) return false;
        }
      }
      return true;
    case rapidjson::kArrayType:
      out.type = doc_node::kind::seq;
      out.children.resize(v.Size());
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        if (!convert(v[i], out.children[i], depth + 1)) return false;
      }
      return true;
  }
  return false;
}

}  // namespace

bool json_to_doc(std::string_view text, doc_node& out, std::string& error) {
  rapidjson::Document d;
  // A snapshot nests about 5 levels: the parse stops at the first container past max_depth, and
  // convert() (which recurses) never sees more.
  const auto parsed = json::parse<rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseValidateEncodingFlag |
                                  rapidjson::kParseIterativeFlag>(d, text, max_depth);
  if (!parsed) {
    error = parsed.message();
    return false;
  }
  if (!convert(d, out, 0)) {
    error = json::too_deep_message(max_depth);
    return false;
  }
  return true;
}

snapshot_result parse_snapshot_json(std::string_view json) {
  doc_node root;
  std::string error;
  if (!json_to_doc(json, root, error)) {
    snapshot_result r;
    r.errors.push_back(std::move(error));
    return r;
  }
  return build_snapshot(root);
}

}  // namespace aforo::core::entitlements
