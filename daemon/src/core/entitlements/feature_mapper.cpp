// Feature rules: first match wins, in file order.
#include "core/entitlements/feature_mapper.hpp"

namespace aforo::core::entitlements {

namespace {
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}
}  // namespace

bool path_has_prefix(std::string_view path, std::string_view prefix) {
  if (prefix.empty()) return true;
  path = path.substr(0, path.find('?'));
  if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
  return path.size() == prefix.size() || prefix.back() == '/' || path[prefix.size()] == '/';
}

namespace {
bool matches_except_path(const rule_match& m, const route_info& r) {
  if (!m.service.empty() && m.service != r.service) return false;
  if (!m.route.empty() && m.route != r.route) return false;
  if (!m.operation.empty() && m.operation != r.operation) return false;
  if (!m.methods.empty()) {
    bool any = false;
    for (const auto& method : m.methods) {
      if (iequals(method, r.method)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  return true;
}
}  // namespace

bool rule_matches(const rule_match& m, const route_info& r) {
  return matches_except_path(m, r) && path_has_prefix(r.path, m.path_prefix);
}

mapping_scope scope_of_mapping(std::span<const feature_rule> rules, std::optional<std::string_view> explicit_feature,
                               const route_info& r) {
  if (explicit_feature && !explicit_feature->empty()) return {};
  bool any_candidate = false;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const rule_match& m = rules[i].match;
    if (!matches_except_path(m, r)) continue;
    if (!any_candidate && m.path_prefix.empty()) return {};  // matches every path first
    any_candidate = true;
    if (!path_has_prefix(r.path, m.path_prefix)) continue;
    // The matched rule, with prefix P: safe unless an earlier candidate's prefix lies under P.
    for (std::size_t j = 0; j < i; ++j) {
      const rule_match& e = rules[j].match;
      if (matches_except_path(e, r) && path_has_prefix(e.path_prefix, m.path_prefix))
        return {mapping_scope::kind::path, {}};
    }
    return {mapping_scope::kind::prefix, m.path_prefix};
  }
  return any_candidate ? mapping_scope{mapping_scope::kind::path, {}} : mapping_scope{};
}

const feature_rule* map_feature(std::span<const feature_rule> rules, const route_info& r) {
  for (const auto& rule : rules) {
    if (rule_matches(rule.match, r)) return &rule;
  }
  return nullptr;
}

resolved_feature resolve_feature(std::span<const feature_rule> rules, std::optional<std::string_view> explicit_feature,
                                 const route_info& r) {
  resolved_feature out;
  if (explicit_feature && !explicit_feature->empty()) {
    out.feature = *explicit_feature;
    for (const auto& rule : rules) {
      if (rule.feature == out.feature) {
        out.rule = &rule;
        break;
      }
    }
    return out;
  }
  if (const feature_rule* rule = map_feature(rules, r)) {
    out.feature = rule->feature;
    out.rule = rule;
  }
  return out;
}

}  // namespace aforo::core::entitlements
