// YAML guard file -> neutral tree -> core guard builder.
#include "config/guards_yaml.hpp"

#include <fstream>
#include <sstream>

#include "config/snapshot_yaml.hpp"
#include "core/margin/guard_builder.hpp"

namespace aforo::config {

core::margin::guard_set_result parse_guards_yaml(std::string_view yaml) {
  core::entitlements::doc_node root;
  std::string error;
  if (!yaml_to_doc(yaml, root, error)) {
    core::margin::guard_set_result r;
    r.errors.push_back(std::move(error));
    return r;
  }
  // An empty file is an error, not "no guards": a file caught half-written during a hot
  // reload must not switch the guards off. `guards: []` says none.
  return core::margin::build_guard_set(root);
}

core::margin::guard_set_result load_guards_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    core::margin::guard_set_result r;
    r.errors.push_back(path + ": cannot read the guard file");
    return r;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_guards_yaml(text.str());
}

}  // namespace aforo::config
