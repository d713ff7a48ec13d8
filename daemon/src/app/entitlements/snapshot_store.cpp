// The last-known-good snapshot file; see snapshot_store.hpp.
#include "app/entitlements/snapshot_store.hpp"

#include <algorithm>

#include "config/snapshot_yaml.hpp"
#include "core/entitlements/persisted_snapshot.hpp"
#include "io/atomic_file.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::app {

namespace {
constexpr std::size_t max_file_bytes = 256 * 1024 * 1024 + 4096;  // the control plane's body limit + header
constexpr std::int64_t touch_every_ms = 10'000;

std::int64_t wall_ms() { return util::unix_now_ms(); }
}  // namespace

snapshot_store::snapshot_store(std::string state_dir)
    : path_(std::move(state_dir) + "/entitlements.snapshot"),
      errors_(util::metrics().counter(
          "aforo_sidecar_entitlements_snapshot_persist_errors_total",
          "Failed writes of the last-known-good snapshot file in discovery.state_dir (the snapshot still serves).")) {}

void snapshot_store::write_failed(const std::string& why) {
  errors_.inc();
  if (why != failing_)
    util::log::warn("entitlements: cannot keep the last known good snapshot: " + why +
                    " (it serves from memory; a restart while the source is away would find none)");
  failing_ = why;
}

void snapshot_store::save(std::string_view text, std::string_view source, std::int64_t fetched_at_ms) {
  core::entitlements::persisted_snapshot s;
  s.text = std::string(text);
  s.fetched_at_ms = fetched_at_ms;
  s.source = std::string(source);
  const std::string err =
      io::write_file_atomically(path_, core::entitlements::encode_persisted_snapshot(s), 0600, "discovery.state_dir");
  saved_ = err.empty();
  if (!err.empty()) return write_failed(err);
  if (!failing_.empty()) util::log::info("entitlements: last known good snapshot written to " + path_ + " again");
  failing_.clear();
  touched_ms_ = fetched_at_ms;
}

void snapshot_store::confirmed(std::int64_t now_ms) {
  if (!saved_ || now_ms - touched_ms_ < touch_every_ms) return;
  touched_ms_ = now_ms;
  if (!io::touch_file(path_)) write_failed("cannot set the modification time of " + path_);
}

std::optional<last_known_good> snapshot_store::load() const {
  auto file = io::read_file_nofollow(path_, max_file_bytes);
  if (!file.data) {
    if (!file.missing) util::log::warn("entitlements: last known good snapshot ignored: " + file.error);
    return std::nullopt;
  }
  std::string error;
  auto decoded = core::entitlements::decode_persisted_snapshot(*file.data, error);
  if (!decoded) {
    util::log::warn("entitlements: last known good snapshot " + path_ + " ignored: " + error);
    return std::nullopt;
  }
  auto parsed = config::parse_snapshot_text(decoded->text);
  if (!parsed.ok()) {
    util::log::warn("entitlements: last known good snapshot " + path_ + " ignored: not a valid snapshot (" +
                    (parsed.errors.empty() ? std::string("?") : parsed.errors.front()) + ")");
    return std::nullopt;
  }
  last_known_good out;
  out.snap = std::make_shared<const core::entitlements::snapshot>(std::move(*parsed.value));
  // Confirmations after the write only touched the file: its mtime is the latest (never in the future).
  out.fetched_at_ms = std::max(decoded->fetched_at_ms, std::min(file.mtime_ms, wall_ms()));
  out.source = std::move(decoded->source);
  return out;
}

}  // namespace aforo::app
