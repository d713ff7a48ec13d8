// Builds and validates a snapshot from a format-neutral document tree (shared by JSON and YAML).
#pragma once

#include "core/entitlements/doc_node.hpp"
#include "core/entitlements/snapshot.hpp"

namespace aforo::core::entitlements {

/// Validates the whole tree, collecting every error with its path; unknown keys are rejected by
/// name. Limits: customer ids 1..64 chars; feature names 1..255 of [A-Za-z0-9_.-]; limits are
/// integers >= 0; money has at most 6 decimals. Pure, thread-safe.
[[nodiscard]] snapshot_result build_snapshot(const doc_node& root);

}  // namespace aforo::core::entitlements
