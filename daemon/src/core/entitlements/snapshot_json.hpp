// Snapshot parsing from JSON text (the control plane's format and `file:` sources ending in .json).
#pragma once

#include <string_view>

#include "core/entitlements/doc_node.hpp"
#include "core/entitlements/snapshot.hpp"

namespace aforo::core::entitlements {

/// Parses JSON into the neutral tree, numbers kept as their source text. On malformed JSON returns
/// false and sets error ("malformed JSON at offset N: ..."). Pure, thread-safe.
bool json_to_doc(std::string_view json, doc_node& out, std::string& error);

/// JSON text -> validated snapshot (errors name their paths, see build_snapshot).
[[nodiscard]] snapshot_result parse_snapshot_json(std::string_view json);

}  // namespace aforo::core::entitlements
