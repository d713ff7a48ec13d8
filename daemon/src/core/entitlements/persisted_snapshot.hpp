// The last-known-good snapshot file kept in the state directory: the source's own text (YAML or JSON,
// as it was loaded) behind one header line that carries when the source gave it and a checksum, so a
// truncated or altered file is recognised and ignored, never half used. Pure, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aforo::core::entitlements {

/// What the file holds.
struct persisted_snapshot {
  std::string text;                ///< the snapshot text exactly as the source gave it
  std::int64_t fetched_at_ms = 0;  ///< Unix epoch ms when the source gave (or last confirmed) it
  std::string source;              ///< "control_plane" | "file", for the log line
};

/// Header line: "aforo-snapshot 1 <fetched_at_ms> <source> <length> <crc32c hex>\n", then the text.
[[nodiscard]] std::string encode_persisted_snapshot(const persisted_snapshot& s);

/// Parses a file's content; nullopt with `error` set when the header, length or checksum is wrong.
[[nodiscard]] std::optional<persisted_snapshot> decode_persisted_snapshot(std::string_view file, std::string& error);

}  // namespace aforo::core::entitlements
