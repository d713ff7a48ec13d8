// Unit tests for the disk spool with real files in a temp dir: FIFO, acks, restarts, corruption, caps.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/pipeline/spool_record.hpp"
#include "io/spool/spool_store.hpp"
#include "unit_temp_dir.hpp"

using namespace aforo;
using io::spool_append_result;
using io::spool_options;
using io::spool_store;
namespace fs = std::filesystem;

using aforo::unit::temp_dir;

namespace {

std::string payload(int i) { return R"({"events":[{"idempotencyKey":"k)" + std::to_string(i) + "\"}]}"; }

spool_options opts(const temp_dir& d, std::uint64_t segment_bytes = 1 << 20, std::uint64_t max_bytes = 1 << 30) {
  spool_options o;
  o.dir = d.path;
  o.segment_bytes = segment_bytes;
  o.max_bytes = max_bytes;
  return o;
}

std::vector<fs::path> segments(const temp_dir& d) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(d.dir())) {
    if (e.path().extension() == ".spool") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Drains the spool, returning the payloads in order.
std::vector<std::string> drain(spool_store& s) {
  std::vector<std::string> out;
  while (auto r = s.peek()) {
    out.push_back(r->payload);
    REQUIRE_FALSE(s.ack());
  }
  return out;
}

std::vector<std::string> payloads(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i < to; ++i) v.push_back(payload(i));
  return v;
}

const std::uint64_t rec_size = aforo::core::spool_header_bytes + payload(0).size();  // payload(0..9): same size

}  // namespace

TEST_CASE("spool store: records come back in FIFO order with counts", "[spool][store]") {
  temp_dir d;
  spool_store s(opts(d));
  CHECK(s.empty());
  for (int i = 0; i < 5; ++i) REQUIRE(s.append(payload(i), static_cast<std::uint32_t>(i + 1)).stored());
  CHECK(s.records() == 5);
  CHECK(s.events() == 15);
  CHECK(s.bytes() == 5 * rec_size);
  const auto first = s.peek();
  REQUIRE(first.has_value());
  CHECK(first->payload == payload(0));
  CHECK(first->event_count == 1);
  CHECK(s.records() == 5);  // peek does not consume
  REQUIRE_FALSE(s.ack());
  CHECK(s.events() == 14);
  CHECK(drain(s) == payloads(1, 5));
  CHECK(s.empty());
  CHECK(s.bytes() == 0);
}

TEST_CASE("spool store: peek_upto gathers records up to an event budget", "[spool][store]") {
  temp_dir d;
  spool_store s(opts(d));
  REQUIRE(s.append(payload(0), 60).stored());
  REQUIRE(s.append(payload(1), 30).stored());
  REQUIRE(s.append(payload(2), 20).stored());
  const auto batch = s.peek_upto(100).records;
  REQUIRE(batch.size() == 2);
  CHECK(batch[1].payload == payload(1));
  REQUIRE_FALSE(s.ack(batch.size()));
  const auto big = s.peek_upto(5).records;  // at least one record even when it alone is over budget
  REQUIRE(big.size() == 1);
  CHECK(big[0].event_count == 20);
}

TEST_CASE("spool store: segments rotate and consumed segments are deleted", "[spool][store]") {
  temp_dir d;
  spool_store s(opts(d, 3 * rec_size));
  for (int i = 0; i < 7; ++i) REQUIRE(s.append(payload(i), 1).stored());
  CHECK(segments(d).size() == 3);
  for (const auto& p : segments(d)) CHECK(fs::file_size(p) <= 3 * rec_size);
  REQUIRE_FALSE(s.ack(4));
  CHECK(segments(d).size() == 2);
  CHECK(drain(s) == payloads(4, 7));
  CHECK(segments(d).size() == 1);  // the segment being appended to stays
}

TEST_CASE("spool store: a restart keeps FIFO order and does not repeat acked records", "[spool][store]") {
  temp_dir d;
  {
    spool_store s(opts(d, 4 * rec_size));
    for (int i = 0; i < 10; ++i) REQUIRE(s.append(payload(i), 2).stored());
    REQUIRE_FALSE(s.ack(3));
  }
  {
    spool_store s(opts(d, 4 * rec_size));
    CHECK(s.recovery().records == 7);
    CHECK(s.recovery().events == 14);
    CHECK(s.recovery().corrupt_records == 0);
    CHECK(s.records() == 7);
    REQUIRE(s.append(payload(10), 2).stored());  // new appends go after the recovered ones
    REQUIRE_FALSE(s.ack(2));
  }
  spool_store s(opts(d, 4 * rec_size));
  CHECK(drain(s) == payloads(5, 11));
}

TEST_CASE("spool store: a restart after everything was consumed finds nothing", "[spool][store]") {
  temp_dir d;
  {
    spool_store s(opts(d));
    for (int i = 0; i < 3; ++i) REQUIRE(s.append(payload(i), 1).stored());
    CHECK(drain(s).size() == 3);
  }
  {
    spool_store s(opts(d));
    CHECK(s.empty());
    CHECK(segments(d).empty());
    REQUIRE(s.append(payload(9), 1).stored());
  }
  spool_store s(opts(d));
  CHECK(drain(s) == std::vector<std::string>{payload(9)});
}

TEST_CASE("spool store: a directory is used by one store at a time", "[spool][store]") {
  temp_dir d;
  {
    spool_store s(opts(d));
    CHECK_THROWS_WITH(spool_store(opts(d)), Catch::Contains("in use"));
  }
  spool_store reopened(opts(d));  // released on close
  CHECK(reopened.empty());
}

TEST_CASE("spool store: ack_through never consumes records that drop_oldest replaced", "[spool][store]") {
  temp_dir d;
  auto o = opts(d, 1 << 20, 3 * rec_size);
  o.when_full = core::when_full_policy::drop_oldest;
  spool_store s(o);
  for (int i = 0; i < 3; ++i) REQUIRE(s.append(payload(i), 1).stored());
  const auto in_flight = s.peek_upto(2).records;  // records 0 and 1 are being delivered
  REQUIRE(in_flight.size() == 2);
  CHECK(in_flight[0].seq < in_flight[1].seq);
  const auto r = s.append(payload(3), 1);  // the spool is full: record 0 is dropped
  REQUIRE(r.dropped_records == 1);
  REQUIRE_FALSE(s.ack_through(in_flight.back().seq));  // delivery of 0 and 1 succeeded
  CHECK(drain(s) == payloads(2, 4));
  REQUIRE_FALSE(s.ack_through(in_flight.back().seq));  // a repeated ack is harmless
}

TEST_CASE("spool store: flipped bytes and a truncated segment are skipped and counted", "[spool][store]") {
  temp_dir d;
  {
    spool_store s(opts(d));
    for (int i = 0; i < 6; ++i) REQUIRE(s.append(payload(i), 1).stored());
  }
  const auto segs = segments(d);
  REQUIRE(segs.size() == 1);
  {
    std::fstream f(segs[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(rec_size + aforo::core::spool_header_bytes + 5));  // record 1's payload
    f.put('#');
  }
  fs::resize_file(segs[0], 6 * rec_size - 7);  // record 5 loses its tail
  spool_store s(opts(d));
  CHECK(s.recovery().corrupt_records == 1);
  CHECK(s.recovery().torn_records == 1);
  CHECK(s.recovery().records == 4);
  CHECK(drain(s) == std::vector<std::string>{payload(0), payload(2), payload(3), payload(4)});
  // The segment as it was found is copied aside, bad bytes and all.
  REQUIRE(s.recovery().quarantined_copies.size() == 1);
  CHECK(fs::file_size(s.recovery().quarantined_copies[0]) == 6 * rec_size - 7);
}

TEST_CASE("spool store: a garbage segment and a garbage cursor never stop startup", "[spool][store]") {
  temp_dir d;
  {
    spool_store s(opts(d));
    for (int i = 0; i < 2; ++i) REQUIRE(s.append(payload(i), 1).stored());
    REQUIRE_FALSE(s.ack());
  }
  std::ofstream(d.dir() / "seg-00000000000000000099.spool", std::ios::binary) << std::string(1000, '\xFF');
  std::ofstream(d.dir() / "cursor", std::ios::binary | std::ios::trunc) << "nonsense, not a cursor";
  spool_store s(opts(d));
  CHECK(s.recovery().cursor_reset);
  CHECK(s.recovery().corrupt_records == 1);
  // Without a cursor the acked record comes again (at-least-once; ingest dedupes by idempotencyKey).
  CHECK(drain(s) == payloads(0, 2));
}

TEST_CASE("spool store: drop_oldest drops whole oldest records and reports their events", "[spool][store]") {
  temp_dir d;
  auto o = opts(d, 1 << 20, 3 * rec_size);
  o.when_full = core::when_full_policy::drop_oldest;
  spool_store s(o);
  for (int i = 0; i < 3; ++i) REQUIRE(s.append(payload(i), 10).stored());
  const auto r = s.append(payload(3), 10);
  CHECK(r.stored());
  CHECK(r.dropped_records == 1);
  CHECK(r.dropped_events == 10);
  CHECK(s.bytes() == 3 * rec_size);
  CHECK(drain(s) == payloads(1, 4));
}

TEST_CASE("spool store: reject refuses appends past max_bytes", "[spool][store]") {
  temp_dir d;
  auto o = opts(d, 1 << 20, 2 * rec_size);
  o.when_full = core::when_full_policy::reject;
  spool_store s(o);
  REQUIRE(s.append(payload(0), 1).stored());
  REQUIRE(s.append(payload(1), 1).stored());
  const auto r = s.append(payload(2), 1);
  CHECK(r.result == spool_append_result::status::rejected_full);
  CHECK(s.records() == 2);
  REQUIRE_FALSE(s.ack());
  CHECK(s.append(payload(2), 1).stored());
  CHECK(drain(s) == payloads(1, 3));
}

TEST_CASE("spool store: a record larger than max_bytes is refused as too large", "[spool][store]") {
  temp_dir d;
  spool_store s(opts(d, 1 << 20, 64));
  REQUIRE(s.append("x", 1).stored());
  const auto r = s.append(std::string(100, 'x'), 1);
  CHECK(r.result == spool_append_result::status::too_large);
  CHECK(s.records() == 1);
}

TEST_CASE("spool store: a record corrupted on disk after startup is skipped on read", "[spool][store]") {
  temp_dir d;
  spool_store s(opts(d));
  for (int i = 0; i < 3; ++i) REQUIRE(s.append(payload(i), 1).stored());
  {
    std::fstream f(segments(d)[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(aforo::core::spool_header_bytes + 2));
    f.put('#');
  }
  CHECK(drain(s) == payloads(1, 3));
  CHECK(s.corrupt_on_read() == 1);
  CHECK(s.quarantined_records() == 1);
  CHECK_FALSE(s.sync());
  // The bad record's bytes are kept for an operator, not unlinked with its segment.
  std::vector<fs::path> kept;
  for (const auto& e : fs::directory_iterator(s.quarantine_dir())) kept.push_back(e.path());
  REQUIRE(kept.size() == 1);
  CHECK(fs::file_size(kept[0]) == rec_size);
}

TEST_CASE("spool store: an unusable directory is a startup error naming it", "[spool][store]") {
  temp_dir d;
  std::ofstream(d.dir() / "file") << "x";
  spool_options o;
  o.dir = (d.dir() / "file" / "spool").string();
  REQUIRE_THROWS_WITH(spool_store(o), Catch::Contains(o.dir));
  if (::geteuid() != 0) {
    fs::create_directory(d.dir() / "ro");
    ::chmod((d.dir() / "ro").c_str(), 0500);
    o.dir = (d.dir() / "ro").string();
    CHECK_THROWS_WITH(spool_store(o), Catch::Contains("not writable"));
    ::chmod((d.dir() / "ro").c_str(), 0700);
  }
}

namespace {

/// Lowers RLIMIT_NOFILE so that the next open() fails with EMFILE, and restores it on destruction.
struct no_free_fds {
  rlimit saved{};
  no_free_fds() {
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    const int probe = ::open("/dev/null", O_RDONLY);  // the lowest free descriptor
    REQUIRE(probe >= 0);
    ::close(probe);
    rlimit low = saved;
    low.rlim_cur = static_cast<rlim_t>(probe);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  }
  ~no_free_fds() { ::setrlimit(RLIMIT_NOFILE, &saved); }
  no_free_fds(const no_free_fds&) = delete;
  no_free_fds& operator=(const no_free_fds&) = delete;
};

}  // namespace

TEST_CASE("spool store: a segment that cannot be opened (EMFILE) is an I/O error: nothing is consumed",
          "[spool][store]") {
  temp_dir d;
  spool_store s(opts(d, 3 * rec_size));  // three records per segment
  for (int i = 0; i < 9; ++i) REQUIRE(s.append(payload(i), 1).stored());
  REQUIRE(segments(d).size() == 3);
  // Read and ack the first segment, so that the next read must open the second one.
  auto first = s.peek_upto(3);
  REQUIRE(first.records.size() == 3);
  REQUIRE_FALSE(s.ack_through(first.records.back().seq));
  {
    no_free_fds fault;
    for (int attempt = 0; attempt < 5; ++attempt) {
      const auto p = s.peek_upto(3);
      CHECK(p.records.empty());
      CHECK(p.io_error.value() == EMFILE);  // (compared by value: no virtual call into libstdc++'s category)
    }
  }
  CHECK(s.read_errors() == 5);
  CHECK(s.corrupt_on_read() == 0);
  CHECK(s.quarantined_records() == 0);
  CHECK(s.records() == 6);
  CHECK(drain(s) == payloads(3, 9));  // every record behind the failed open is still there, in order
}

TEST_CASE("spool store: a segment that cannot be read at startup is moved to quarantine and the store opens",
          "[spool][store]") {
  temp_dir d;
  {
    spool_store s(opts(d, 3 * rec_size));
    for (int i = 0; i < 6; ++i) REQUIRE(s.append(payload(i), 1).stored());
  }
  // A directory where a segment should be: open() works, read() fails with EISDIR, as an I/O error would.
  const auto segs = segments(d);
  REQUIRE(segs.size() == 2);
  fs::remove(segs[0]);
  fs::create_directory(segs[0]);
  spool_store s(opts(d, 3 * rec_size));
  REQUIRE(s.recovery().quarantined_unreadable.size() == 1);
  CHECK(s.recovery().quarantined_unreadable[0].find("quarantine") != std::string::npos);
  CHECK(drain(s) == payloads(3, 6));
  CHECK(fs::is_directory(fs::path(s.quarantine_dir()) / segs[0].filename()));
}

TEST_CASE("spool store: records keep their format, release 0.1's segment (format 1) is read as it was written",
          "[spool][store]") {
  temp_dir d;
  for (const auto& f : fs::directory_iterator(fs::path(AFORO_SOURCE_DIR) / "tests/fixtures/spool-v1")) {
    if (f.path().extension() != ".md") fs::copy_file(f.path(), d.dir() / f.path().filename());
  }
  spool_store s(opts(d));
  CHECK(s.recovery().records == 2);
  CHECK(s.recovery().format1_records == 2);
  CHECK(s.events() == 5);
  REQUIRE(s.append("\x04\x22\x4d\x18-not-really-lz4", 7, core::spool_format::lz4).stored());
  const auto all = s.peek_upto(100).records;
  REQUIRE(all.size() == 3);
  CHECK(all[0].format == core::spool_format::json);
  CHECK(all[0].payload.find("fixture-v1-0") != std::string::npos);
  CHECK(all[0].event_count == 3);
  CHECK(all[1].event_count == 2);
  CHECK(all[2].format == core::spool_format::lz4);
  CHECK(all[2].event_count == 7);
}

TEST_CASE("spool store: take_unsynced hands over every file written since the last call, rotated ones too",
          "[spool][store]") {
  temp_dir d;
  spool_store s(opts(d, 2 * rec_size));
  CHECK_FALSE(s.has_unsynced());
  for (int i = 0; i < 5; ++i) REQUIRE(s.append(payload(i), 1).stored());  // segments of 2, 2 and 1 records
  REQUIRE(s.has_unsynced());
  auto u = s.take_unsynced();
  CHECK(u.files.size() == 3);
  CHECK(u.dir >= 0);
  CHECK_FALSE(spool_store::sync_files(u));
  CHECK(u.files.empty());
  CHECK_FALSE(s.has_unsynced());
  REQUIRE(s.append(payload(5), 1).stored());
  auto v = s.take_unsynced();
  CHECK(v.files.size() == 1);  // the active segment only; no new segment, so no directory
  CHECK(v.dir < 0);
  CHECK_FALSE(spool_store::sync_files(v));
}

TEST_CASE(
    "spool store: peek_from reads past the records in flight and reports a corrupt one there without consuming it",
    "[spool][store]") {
  temp_dir d;
  spool_store s(opts(d));
  for (int i = 0; i < 5; ++i) REQUIRE(s.append(payload(i), 1).stored());
  const auto first = s.front_seq();
  CHECK(s.back_seq() == first + 4);
  {  // record 3 (seq first + 2) goes bad on disk
    std::fstream f(segments(d)[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(2 * rec_size + aforo::core::spool_header_bytes + 2));
    f.put('#');
  }
  const auto p = s.peek_from(first + 1, 10);  // the oldest record is in flight: read from the next on
  REQUIRE(p.records.size() == 3);
  CHECK(p.records[0].seq == first + 1);
  CHECK(p.records[1].seq == first + 3);
  REQUIRE(p.corrupt.size() == 1);
  CHECK(p.corrupt[0].first == first + 2);
  CHECK(s.corrupt_on_read() == 1);
  CHECK(s.quarantined_records() == 1);
  CHECK(s.records() == 5);  // nothing consumed: acks go in order
  CHECK_FALSE(s.ack_through(first + 2));
  CHECK(s.records() == 2);
  CHECK(s.peek_from(first + 100, 10).records.empty());
  CHECK(s.peek_from(0, 10).records.size() == 2);
}
