// Unit tests for the dead-letter file: one JSON line per poison batch.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/dead_letter.hpp"
#include "unit_temp_dir.hpp"

using aforo::io::dead_letter_file;
namespace fs = std::filesystem;

using aforo::unit::temp_dir;

namespace {
std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) out.push_back(line);
  return out;
}
}  // namespace

TEST_CASE("dead letter: each poison batch is one JSON line with status and time", "[pipeline][dead_letter]") {
  temp_dir d;
  const std::string dir = dead_letter_file::default_dir(d.path, "");
  CHECK(dir == (d.dir() / "dead-letter").string());
  dead_letter_file dl(dir);
  const std::string batch = R"({"events":[{"idempotencyKey":"k1"},{"idempotencyKey":"k2"}]})";
  REQUIRE_FALSE(dl.append(batch, 2, 400, "2026-11-26T10:00:00Z", R"({"error":"bad"})"));
  REQUIRE_FALSE(dl.append("not json\nat all", 1, 422, "2026-11-26T10:00:01Z"));
  REQUIRE_FALSE(dl.sync());
  const auto lines = lines_of(dl.path());
  REQUIRE(lines.size() == 2);
  rapidjson::Document first;
  first.Parse(lines[0].c_str());
  REQUIRE(first.IsObject());
  CHECK(first["status"].GetInt() == 400);
  CHECK(std::string(first["time"].GetString()) == "2026-11-26T10:00:00Z");
  CHECK(first["events"].GetUint() == 2);
  CHECK(first["batch"]["events"].Size() == 2);
  CHECK(std::string(first["response"].GetString()) == R"({"error":"bad"})");
  rapidjson::Document second;
  second.Parse(lines[1].c_str());
  REQUIRE(second.IsObject());
  CHECK(std::string(second["batch"].GetString()) == "not json\nat all");
}

TEST_CASE("dead letter: a configured directory wins and an unusable one fails at startup", "[pipeline][dead_letter]") {
  CHECK(dead_letter_file::default_dir("/tmp/spool", "/var/dl") == "/var/dl");
  temp_dir d;
  std::ofstream(d.dir() / "file") << "x";
  CHECK_THROWS(dead_letter_file((d.dir() / "file" / "dl").string()));
}

TEST_CASE("dead letter: rotation keeps the files within max_bytes, deleting the oldest counts its events",
          "[pipeline][dead_letter]") {
  temp_dir d;
  const std::string batch = R"({"events":[{"idempotencyKey":")" + std::string(900, 'k') + R"("}]})";
  dead_letter_file dl(d.path, 16 * 1024);  // rotated past 4 KiB: 4 files of ~4 KiB at most
  for (int i = 0; i < 40; ++i) REQUIRE_FALSE(dl.append(batch, 1, 400, "2026-12-06T00:00:00Z", "bad", "rejected_batch"));
  CHECK(dl.bytes() <= 16 * 1024);
  for (const char* suffix : {"", ".1", ".2", ".3"}) CHECK(fs::exists(dl.path() + suffix));
  CHECK_FALSE(fs::exists(dl.path() + ".4"));
  CHECK(dl.deleted_files() > 0);
  // Every entry is in a kept file or was counted when its file was deleted.
  std::size_t kept = 0;
  for (const char* suffix : {"", ".1", ".2", ".3"}) kept += lines_of(dl.path() + suffix).size();
  CHECK(kept + dl.deleted_events() == 40);
  // A restart sees the same bound.
  dead_letter_file again(d.path, 16 * 1024);
  CHECK(again.bytes() == dl.bytes());
}

TEST_CASE("dead letter: a write that fails part way leaves no partial line behind", "[pipeline][dead_letter]") {
  temp_dir d;
  dead_letter_file dl(d.path);
  const std::string batch = R"({"events":[{"idempotencyKey":"k1"}]})";
  REQUIRE_FALSE(dl.append(batch, 1, 400, "2026-12-06T00:00:00Z"));
  const auto good = fs::file_size(dl.path());
  {
    // The file may not grow past 10 more bytes: the next line is cut, and the write fails (EFBIG).
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    rlimit low = saved;
    low.rlim_cur = good + 10;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &low) == 0);
    const auto err = dl.append(batch, 1, 400, "2026-12-06T00:00:01Z");
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    CHECK(err);
  }
  CHECK(fs::file_size(dl.path()) == good);
  REQUIRE_FALSE(dl.append(batch, 1, 400, "2026-12-06T00:00:02Z"));
  const auto lines = lines_of(dl.path());
  REQUIRE(lines.size() == 2);
  for (const auto& line : lines) {
    rapidjson::Document doc;
    doc.Parse(line.c_str());
    CHECK(doc.IsObject());
  }
}

TEST_CASE("dead letter: entries for single events carry their reason and message, the time defaults to now",
          "[pipeline][dead_letter]") {
  temp_dir d;
  dead_letter_file dl(d.path);
  REQUIRE_FALSE(dl.append({{R"({"events":[{"idempotencyKey":"a"}]})", 1, 202, "event_failed", "", "unknown metric"},
                           {R"({"events":[{"idempotencyKey":"b"}]})", 1, 202, "success_false", "", "no"}}));
  const auto lines = lines_of(dl.path());
  REQUIRE(lines.size() == 2);
  rapidjson::Document a;
  a.Parse(lines[0].c_str());
  CHECK(std::string(a["reason"].GetString()) == "event_failed");
  CHECK(std::string(a["response"].GetString()) == "unknown metric");
  CHECK(std::string(a["time"].GetString()).size() == 20);  // 2026-12-06T01:02:03Z
  CHECK(std::string(a["batch"]["events"][0]["idempotencyKey"].GetString()) == "a");
}
