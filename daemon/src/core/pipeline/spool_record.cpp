// Spool record framing with Boost.CRC's CRC-32C.
#include "core/pipeline/spool_record.hpp"

#include <boost/crc.hpp>

#include <algorithm>
#include <cstring>

namespace aforo::core {
namespace {

using crc32c_t = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

void put_u32(char* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xFFu);
}

std::uint32_t get_u32(const char* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// CRC-32C with the x86-64 SSE4.2 crc32 instruction when the CPU has it (~10x Boost's table-driven
// ~0.5 GB/s, which was a quarter of the daemon's CPU at 200k events/s), Boost.CRC otherwise.
// crc32c_hw's `state` is the raw register (initial 0xFFFFFFFF, no final xor), so calls chain.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define AFORO_CRC32C_HW 1
__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(std::uint32_t state, const char* p, std::size_t n) noexcept {
  std::uint64_t c = state;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = __builtin_ia32_crc32qi(c32, static_cast<unsigned char>(*p));
  return c32;
}

bool have_crc32c_hw() noexcept {
  static const bool yes = __builtin_cpu_supports("sse4.2");
  return yes;
}
#endif

std::uint32_t record_crc(const char* header, std::string_view payload) noexcept {
#ifdef AFORO_CRC32C_HW
  if (have_crc32c_hw()) {
    const std::uint32_t s = crc32c_hw(0xFFFFFFFFu, header + 4, 8);
    return crc32c_hw(s, payload.data(), payload.size()) ^ 0xFFFFFFFFu;
  }
#endif
  crc32c_t c;
  c.process_bytes(header + 4, 8);
  c.process_bytes(payload.data(), payload.size());
  return c.checksum();
}

/// The first three bytes of both magics; the fourth names the format.
constexpr char magic_prefix[3] = {'\xFF', 'A', 'S'};

bool is_magic(std::uint32_t m) noexcept { return m == spool_magic || m == spool_magic_lz4; }

/// `p` (with `avail` bytes) starts with a magic, or with the part of one that fits.
bool starts_magic(const char* p, std::size_t avail) noexcept {
  if (std::memcmp(p, magic_prefix, std::min<std::size_t>(3, avail)) != 0) return false;
  return avail < 4 || p[3] == 'P' || p[3] == 'Z';
}

/// A bad run's last candidate that is a record cut short: a (partial) header with the magic whose
/// length reaches past the end.
bool looks_torn(std::string_view tail) noexcept {
  if (tail.size() < spool_header_bytes) return starts_magic(tail.data(), tail.size());
  if (!is_magic(get_u32(tail.data()))) return false;
  const std::uint32_t len = get_u32(tail.data() + 4);
  return len <= spool_max_payload && len > tail.size() - spool_header_bytes;
}

}  // namespace

std::uint32_t crc32c(std::string_view data) noexcept {
#ifdef AFORO_CRC32C_HW
  if (have_crc32c_hw()) return crc32c_hw(0xFFFFFFFFu, data.data(), data.size()) ^ 0xFFFFFFFFu;
#endif
  return crc32c_portable(data);
}

std::uint32_t crc32c_portable(std::string_view data) noexcept {
  crc32c_t c;
  c.process_bytes(data.data(), data.size());
  return c.checksum();
}

std::array<char, spool_header_bytes> encode_spool_header(std::string_view payload, std::uint32_t event_count,
                                                         spool_format format) noexcept {
  std::array<char, spool_header_bytes> h{};
  put_u32(h.data(), format == spool_format::lz4 ? spool_magic_lz4 : spool_magic);
  put_u32(h.data() + 4, static_cast<std::uint32_t>(payload.size()));
  put_u32(h.data() + 8, event_count);
  put_u32(h.data() + 12, record_crc(h.data(), payload));
  return h;
}

void append_spool_record(std::string& out, std::string_view payload, std::uint32_t event_count, spool_format format) {
  const auto h = encode_spool_header(payload, event_count, format);
  out.reserve(out.size() + h.size() + payload.size());
  out.append(h.data(), h.size());
  out.append(payload);
}

spool_record_view decode_one_spool_record(std::string_view buffer) noexcept {
  if (buffer.size() < spool_header_bytes) return {};
  const std::uint32_t magic = get_u32(buffer.data());
  if (!is_magic(magic)) return {};
  const std::uint32_t len = get_u32(buffer.data() + 4);
  if (len > spool_max_payload || len > buffer.size() - spool_header_bytes) return {};
  const std::string_view payload = buffer.substr(spool_header_bytes, len);
  if (record_crc(buffer.data(), payload) != get_u32(buffer.data() + 12)) return {};
  return {0, spool_header_bytes + len, get_u32(buffer.data() + 8), payload,
          magic == spool_magic_lz4 ? spool_format::lz4 : spool_format::json};
}

spool_decode_result decode_spool_records(std::string_view buffer) {
  spool_decode_result r;
  std::size_t pos = 0;
  std::size_t bad_start = std::string_view::npos;  // start of the current bad run
  std::size_t last_try = 0;                        // last position tried inside the bad run
  while (pos < buffer.size()) {
    last_try = pos;
    spool_record_view rec = decode_one_spool_record(buffer.substr(pos));
    if (rec.size != 0) {
      if (bad_start != std::string_view::npos) {
        ++r.corrupt_records;
        r.skipped_bytes += pos - bad_start;
        bad_start = std::string_view::npos;
      }
      rec.offset = pos;
      r.records.push_back(rec);
      pos += rec.size;
      continue;
    }
    if (bad_start == std::string_view::npos) bad_start = pos;
    // Resynchronize: the next magic after pos.
    const void* next = nullptr;
    for (std::size_t from = pos + 1; from < buffer.size();) {
      next = std::memchr(buffer.data() + from, magic_prefix[0], buffer.size() - from);
      if (next == nullptr) break;
      const std::size_t at = static_cast<std::size_t>(static_cast<const char*>(next) - buffer.data());
      if (starts_magic(buffer.data() + at, buffer.size() - at)) break;  // a full or cut-off magic
      from = at + 1;
      next = nullptr;
    }
    if (next == nullptr) break;
    pos = static_cast<std::size_t>(static_cast<const char*>(next) - buffer.data());
  }
  if (bad_start != std::string_view::npos) {
    r.skipped_bytes += buffer.size() - bad_start;
    if (looks_torn(buffer.substr(bad_start))) {
      ++r.torn_records;  // the run is one record cut short
    } else if (looks_torn(buffer.substr(last_try))) {
      ++r.torn_records;
      ++r.corrupt_records;  // something bad before the cut-off record
    } else {
      ++r.corrupt_records;
    }
  }
  return r;
}

}  // namespace aforo::core
