// The last-known-good snapshot file format; see persisted_snapshot.hpp.
#include "core/entitlements/persisted_snapshot.hpp"

#include <charconv>
#include <cstdio>
#include <vector>

#include "core/pipeline/spool_record.hpp"

namespace aforo::core::entitlements {

namespace {

constexpr std::string_view magic = "aforo-snapshot";
constexpr std::string_view format_version = "1";

template <class T>
bool parse_number(std::string_view s, T& out, int base = 10) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc{} && p == s.data() + s.size();
}

std::vector<std::string_view> split_spaces(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    const auto end = line.find(' ', i);
    const auto stop = end == std::string_view::npos ? line.size() : end;
    if (stop > i) out.push_back(line.substr(i, stop - i));
    i = stop + 1;
  }
  return out;
}

}  // namespace

std::string encode_persisted_snapshot(const persisted_snapshot& s) {
  char crc[9];
  std::snprintf(crc, sizeof crc, "%08x", core::crc32c(s.text));
  std::string out;
  out.reserve(s.text.size() + 96);
  out.append(magic).append(" ").append(format_version).append(" ");
  out.append(std::to_string(s.fetched_at_ms)).append(" ");
  out.append(s.source.empty() ? std::string("unknown") : s.source).append(" ");
  out.append(std::to_string(s.text.size())).append(" ").append(crc).append("\n");
  out.append(s.text);
  return out;
}

std::optional<persisted_snapshot> decode_persisted_snapshot(std::string_view file, std::string& error) {
  const auto nl = file.find('\n');
  if (nl > 256) {  // npos too: no newline at all
    error = "no header line";
    return std::nullopt;
  }
  const auto fields = split_spaces(file.substr(0, nl));
  if (fields.size() != 6 || fields[0] != magic) {
    error = "not a snapshot file (bad header)";
    return std::nullopt;
  }
  if (fields[1] != format_version) {
    error = "unknown format version " + std::string(fields[1]);
    return std::nullopt;
  }
  persisted_snapshot s;
  std::uint64_t length = 0;
  std::uint32_t crc = 0;
  if (!parse_number(fields[2], s.fetched_at_ms) || s.fetched_at_ms < 0 || !parse_number(fields[4], length) ||
      fields[5].size() != 8 || !parse_number(fields[5], crc, 16)) {
    error = "bad header fields";
    return std::nullopt;
  }
  const auto body = file.substr(nl + 1);
  if (body.size() != length) {
    error = "truncated or padded: " + std::to_string(body.size()) + " bytes of text, the header says " +
            std::to_string(length);
    return std::nullopt;
  }
  if (core::crc32c(body) != crc) {
    error = "checksum mismatch";
    return std::nullopt;
  }
  s.source = std::string(fields[3]);
  s.text = std::string(body);
  return s;
}

}  // namespace aforo::core::entitlements
