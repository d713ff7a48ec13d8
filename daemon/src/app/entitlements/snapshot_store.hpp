// The last-known-good entitlement snapshot on disk: every snapshot the source loads is written to
// {discovery.state_dir}/entitlements.snapshot (atomically, mode 0600), and read back at startup when
// the source cannot give one, so a restart while the control plane is away still decides.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "app/entitlements/snapshot_source.hpp"

namespace aforo::util {
class counter_metric;
}

namespace aforo::app {

/// A snapshot read back from the state directory.
struct last_known_good {
  snapshot_ptr snap;
  std::int64_t fetched_at_ms = 0;  ///< when its source gave or last confirmed it (Unix epoch ms)
  std::string source;              ///< the source kind it came from
};

/// Blocking file I/O on the caller's thread (the io thread): a write per new snapshot version, a
/// touch at most every 10 s while the source keeps confirming it (the file's mtime then carries the
/// confirmation time across a restart), one read at startup. Failures are logged once per change of
/// cause and counted (aforo_sidecar_entitlements_snapshot_persist_errors_total); they never stop
/// the snapshot in memory from serving.
class snapshot_store {
 public:
  explicit snapshot_store(std::string state_dir);

  [[nodiscard]] const std::string& path() const { return path_; }
  /// Persists `text` (the source's own snapshot text) as given by `source` at `fetched_at_ms`.
  void save(std::string_view text, std::string_view source, std::int64_t fetched_at_ms);
  /// The source confirmed the snapshot in force is current.
  void confirmed(std::int64_t now_ms);
  /// Reads the file back: nullopt when there is none, or when it is corrupt, truncated or no valid
  /// snapshot (then logged at WARN and ignored).
  [[nodiscard]] std::optional<last_known_good> load() const;

 private:
  void write_failed(const std::string& why);

  std::string path_;
  std::string failing_;  // the failure last logged; empty while writes succeed
  bool saved_ = false;   // a file of the snapshot in force exists
  std::int64_t touched_ms_ = 0;
  util::counter_metric& errors_;
};

}  // namespace aforo::app
