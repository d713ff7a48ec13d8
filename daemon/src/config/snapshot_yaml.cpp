// YAML -> neutral tree with yaml-cpp -> the core snapshot builder.
#include "config/snapshot_yaml.hpp"

// depthguard.h is not included by yaml.h: naming it makes a yaml-cpp without the parser's recursion bound
// (before 0.7) fail the build, since deep nesting in a snapshot or guard file would otherwise overflow the stack.
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "core/entitlements/snapshot_builder.hpp"
#include "core/entitlements/snapshot_json.hpp"

namespace aforo::config {

namespace {

using core::entitlements::doc_node;

constexpr unsigned max_depth = 32;

bool convert(const YAML::Node& n, doc_node& out, unsigned depth) {
  if (depth > max_depth) return false;
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out.type = doc_node::kind::null;
      return true;
    case YAML::NodeType::Scalar:
      out.type = doc_node::kind::scalar;
      out.text = n.Scalar();
      return true;
    case YAML::NodeType::Sequence:
      out.type = doc_node::kind::seq;
      out.children.resize(n.size());
      for (std::size_t i = 0; i < n.size(); ++i) {
        if (!convert(n[i], out.children[i], depth + 1)) return false;
      }
      return true;
    case YAML::NodeType::Map:
      out.type = doc_node::kind::map;
      out.keys.reserve(n.size());
      out.children.reserve(n.size());
      for (const auto& kv : n) {
        out.keys.push_back(kv.first.IsScalar() ? kv.first.Scalar() : std::string("(non-scalar key)"));
        out.children.emplace_back();
        if (!convert(kv.second, out.children.back(), depth + 1)) return false;
      }
      return true;
  }
  return false;
}

}  // namespace

bool yaml_to_doc(std::string_view yaml, doc_node& out, std::string& error) {
  try {
    const YAML::Node root = YAML::Load(std::string(yaml));
    if (!convert(root, out, 0)) {
      error = "YAML nested deeper than 32 levels";
      return false;
    }
    return true;
  } catch (const YAML::DeepRecursion&) {
    // yaml-cpp's parser recurses per level and stops itself at 500 (DepthGuard, yaml-cpp >= 0.7).
    error = "YAML nested deeper than 32 levels";
    return false;
  } catch (const YAML::Exception& e) {
    error =
        "YAML line " + std::to_string(e.mark.line + 1) + " column " + std::to_string(e.mark.column + 1) + ": " + e.msg;
    return false;
  }
}

core::entitlements::snapshot_result parse_snapshot_yaml(std::string_view yaml) {
  doc_node root;
  std::string error;
  if (!yaml_to_doc(yaml, root, error)) {
    core::entitlements::snapshot_result r;
    r.errors.push_back(std::move(error));
    return r;
  }
  return core::entitlements::build_snapshot(root);
}

core::entitlements::snapshot_result parse_snapshot_text(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') return core::entitlements::parse_snapshot_json(text);
  return parse_snapshot_yaml(text);
}

core::entitlements::snapshot_result load_snapshot_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    core::entitlements::snapshot_result r;
    r.errors.push_back(path + ": cannot read the snapshot file");
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_snapshot_text(text.str());
}

}  // namespace aforo::config
