// The directories the sidecar keeps state in (buffer.spool_dir and its quarantine/, buffer.dead_letter_dir,
// discovery.state_dir) must be its own: another local user who could create or write one could plant spool
// segments that are delivered under the tenant's key, or symlinks that redirect the sidecar's writes. One
// check, used at startup, by --check-config and by every store before it creates or opens files there:
//   - a symlink is refused (the sidecar does not follow one for its state);
//   - the directory must be owned by the effective uid that runs the sidecar (so a root-owned one only
//     when running as root);
//   - it must not be writable by group or others.
// A directory the sidecar creates gets mode 0700 (missing parents are created as before, umask applies).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace aforo::io {

/// Why `path` is not a safe state directory ("PATH is owned by uid 65534 (mode 0755), not by uid 0 ..."),
/// or empty when it is safe or does not exist. `key` (e.g. "buffer.spool_dir") names the config key in
/// the advice.
std::string unsafe_dir_reason(const std::string& path, std::string_view key);

/// Creates `path` when missing (the directory itself mode 0700, missing parents as create_directories
/// does), then checks it. Returns the problem, or empty when `path` is a safe directory.
std::string prepare_private_dir(const std::string& path, std::string_view key);

/// Every state directory of `c` that exists and is unsafe, as "KEY: reason" (what --check-config prints and
/// what refuses a start). Missing ones are fine: the sidecar creates them 0700.
std::vector<std::string> state_dir_problems(const config::sidecar_config& c);

}  // namespace aforo::io
