// Builds the guard model from the format-neutral document tree (the YAML guard file), naming the
// path of every problem.
#pragma once

#include "core/entitlements/doc_node.hpp"
#include "core/margin/guard_config.hpp"

namespace aforo::core::margin {

/// root must be a map with `guards:` (a list, possibly empty). Unknown keys are errors (a typo
/// such as `level1` must not silently disable a level). Defaults: applies_to all, mode enforce,
/// level_3.retry_after 1800s. Runs validate_guards on the result. Every problem is reported as
/// "path: message", e.g. "guards[0].level_2.throttle_rate: must be a rate such as 5/s ...".
/// Pure, thread-safe.
[[nodiscard]] guard_set_result build_guard_set(const entitlements::doc_node& root);

}  // namespace aforo::core::margin
