// LZ4 frame format (lz4frame.h) compression for ingest bodies (`Content-Encoding: lz4`).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace aforo::io {

/// Result of a codec call: `ok` or an error message from liblz4.
struct lz4_result {
  bool ok = false;
  std::string error;
};

/// Compresses `in` into one complete LZ4 frame (content size recorded, content checksum on),
/// replacing `out`. Fails only on allocation/library errors. Thread-safe (no shared state).
lz4_result lz4_compress_frame(std::string_view in, std::string& out);

/// Decompresses one or more concatenated LZ4 frames in `in` into `out` (replaced). Fails, never
/// crashes, on garbage, a truncated frame, a checksum mismatch, or output over `max_out` bytes
/// (a guard against decompression bombs). Thread-safe.
lz4_result lz4_decompress_frame(std::string_view in, std::string& out, std::size_t max_out = 64u << 20);

}  // namespace aforo::io
