// Spool record framing: a 16-byte header (magic, payload length, event count, CRC-32C) then the payload.
// The magic carries the record format: 1 (release 0.1: the batch body as JSON) or 2 (the body as
// one LZ4 frame). Both are read; new records are written in format 2.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aforo::core {

/// Header layout, little-endian:
///   0  u32 magic  0x505341FF (bytes FF 'A' 'S' 'P': format 1, JSON payload; 0xFF never occurs in
///                 UTF-8 JSON, so a resync cannot lock onto payload text) or 0x5A5341FF (FF 'A' 'S'
///                 'Z': format 2, LZ4-frame payload; a resync that locks onto compressed bytes
///                 fails the CRC and moves on)
///   4  u32 payload length in bytes
///   8  u32 event count of the payload
///  12  u32 CRC-32C (Castagnoli) of bytes 4..11 followed by the payload
inline constexpr std::size_t spool_header_bytes = 16;
inline constexpr std::uint32_t spool_magic = 0x505341FFu;      ///< format 1 (raw JSON payload)
inline constexpr std::uint32_t spool_magic_lz4 = 0x5A5341FFu;  ///< format 2 (LZ4 frame payload)

/// How a record's payload is stored.
enum class spool_format : std::uint8_t { json = 1, lz4 = 2 };
inline constexpr std::uint32_t spool_max_payload = 256u * 1024u * 1024u;  ///< larger lengths are corrupt

/// CRC-32C of `data`. Check value of "123456789" is 0xE3069283.
/// Uses the SSE4.2 crc32 instruction when the CPU has it, Boost.CRC otherwise.
[[nodiscard]] std::uint32_t crc32c(std::string_view data) noexcept;
/// The same CRC, always computed by Boost.CRC (the reference the hardware path is tested against).
[[nodiscard]] std::uint32_t crc32c_portable(std::string_view data) noexcept;

/// The header for `payload`; write it followed by the payload (e.g. one writev).
[[nodiscard]] std::array<char, spool_header_bytes> encode_spool_header(
    std::string_view payload, std::uint32_t event_count, spool_format format = spool_format::json) noexcept;

/// Appends header + payload to `out`.
void append_spool_record(std::string& out, std::string_view payload, std::uint32_t event_count,
                         spool_format format = spool_format::json);

/// A record found by the decoder; `payload` points into the decoded buffer.
struct spool_record_view {
  std::size_t offset = 0;  ///< of the header in the buffer
  std::size_t size = 0;    ///< header + payload
  std::uint32_t event_count = 0;
  std::string_view payload;
  spool_format format = spool_format::json;
};

struct spool_decode_result {
  std::vector<spool_record_view> records;  ///< the good ones, in order
  std::uint64_t corrupt_records = 0;       ///< bad runs skipped (flipped bytes, garbage)
  std::uint64_t torn_records = 0;          ///< 0 or 1: a record cut short at the end of the buffer
  std::uint64_t skipped_bytes = 0;         ///< bytes of corrupt and torn runs
};

/// Walks `buffer` record by record. After a bad record (wrong magic, impossible length, bad CRC)
/// it resynchronizes on the next magic that starts a valid record; each skipped run counts once
/// as corrupt, except that a final record whose length reaches past the end counts as torn.
/// Never throws for bad data; linear in the buffer size. Pure; thread-safe.
[[nodiscard]] spool_decode_result decode_spool_records(std::string_view buffer);

/// Checks one record at the start of `buffer` (used when a record is re-read from disk).
/// Returns the record or a view with size 0 when it is not valid.
[[nodiscard]] spool_record_view decode_one_spool_record(std::string_view buffer) noexcept;

}  // namespace aforo::core
