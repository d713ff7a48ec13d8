// Unit tests for spool record framing: encoding, CRC-32C, and decoding past corrupt and torn records.
#include <catch2/catch.hpp>

#include <string>

#include "core/pipeline/spool_record.hpp"

using namespace aforo::core;

namespace {
std::string payload(int i) { return R"({"events":[{"idempotencyKey":"k)" + std::to_string(i) + "\"}]}"; }

std::string three_records(std::size_t* second_offset = nullptr, std::size_t* third_offset = nullptr) {
  std::string buf;
  append_spool_record(buf, payload(1), 1);
  if (second_offset) *second_offset = buf.size();
  append_spool_record(buf, payload(2), 1);
  if (third_offset) *third_offset = buf.size();
  append_spool_record(buf, payload(3), 1);
  return buf;
}
}  // namespace

TEST_CASE("spool record: CRC-32C matches the standard check value", "[spool][record]") {
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
}

TEST_CASE("spool record: records round-trip with their event counts", "[spool][record]") {
  std::string buf;
  append_spool_record(buf, payload(1), 1);
  append_spool_record(buf, "", 0);
  append_spool_record(buf, payload(2), 42);
  CHECK(buf.size() == 3 * spool_header_bytes + payload(1).size() + payload(2).size());
  const auto r = decode_spool_records(buf);
  REQUIRE(r.records.size() == 3);
  CHECK(r.records[0].payload == payload(1));
  CHECK(r.records[0].event_count == 1);
  CHECK(r.records[1].payload.empty());
  CHECK(r.records[2].payload == payload(2));
  CHECK(r.records[2].event_count == 42);
  CHECK(r.records[2].offset == 2 * spool_header_bytes + payload(1).size());
  CHECK(r.corrupt_records == 0);
  CHECK(r.torn_records == 0);
  CHECK(decode_spool_records("").records.empty());
}

TEST_CASE("spool record: a flipped payload byte skips only that record", "[spool][record]") {
  std::size_t second = 0;
  std::string buf = three_records(&second);
  buf[second + spool_header_bytes + 3] ^= 0x01;
  const auto r = decode_spool_records(buf);
  REQUIRE(r.records.size() == 2);
  CHECK(r.records[0].payload == payload(1));
  CHECK(r.records[1].payload == payload(3));
  CHECK(r.corrupt_records == 1);
  CHECK(r.torn_records == 0);
  CHECK(r.skipped_bytes == spool_header_bytes + payload(2).size());
}

TEST_CASE("spool record: a corrupt length or magic resynchronizes on the next record", "[spool][record]") {
  for (std::size_t field : {std::size_t{0}, std::size_t{4}, std::size_t{5}, std::size_t{8}, std::size_t{13}}) {
    std::size_t second = 0;
    std::string buf = three_records(&second);
    buf[second + field] ^= 0x40;
    const auto r = decode_spool_records(buf);
    INFO("flipped header byte " << field);
    REQUIRE(r.records.size() == 2);
    CHECK(r.records[1].payload == payload(3));
    CHECK(r.corrupt_records == 1);
  }
}

TEST_CASE("spool record: a truncated tail is one torn record", "[spool][record]") {
  std::size_t third = 0;
  const std::string full = three_records(nullptr, &third);
  for (std::size_t cut = third + 1; cut < full.size(); ++cut) {
    const auto r = decode_spool_records(std::string_view(full).substr(0, cut));
    INFO("cut at " << cut);
    REQUIRE(r.records.size() == 2);
    CHECK(r.torn_records == 1);
    CHECK(r.corrupt_records == 0);
    CHECK(r.skipped_bytes == cut - third);
  }
}

TEST_CASE("spool record: leading garbage and garbage between records are skipped", "[spool][record]") {
  std::string buf = "garbage!";
  append_spool_record(buf, payload(1), 1);
  buf += std::string(100, '\xFF');
  append_spool_record(buf, payload(2), 1);
  const auto r = decode_spool_records(buf);
  REQUIRE(r.records.size() == 2);
  CHECK(r.records[0].payload == payload(1));
  CHECK(r.records[1].payload == payload(2));
  CHECK(r.corrupt_records == 2);
  CHECK(r.skipped_bytes == 108);
}

TEST_CASE("spool record: decode_one checks a single record", "[spool][record]") {
  std::string buf;
  append_spool_record(buf, payload(7), 3);
  const auto ok = decode_one_spool_record(buf);
  CHECK(ok.size == buf.size());
  CHECK(ok.event_count == 3);
  CHECK(ok.payload == payload(7));
  buf.back() ^= 1;
  CHECK(decode_one_spool_record(buf).size == 0);
  CHECK(decode_one_spool_record(std::string_view(buf).substr(0, 10)).size == 0);
}
