// Unit tests for the dead-letter file: one JSON line per poison batch.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/dead_letter.hpp"

using aforo::io::dead_letter_file;
namespace fs = std::filesystem;

namespace {
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "aforo-dl-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(f, line);) out.push_back(line);
  return out;
}
}  // namespace

TEST_CASE("dead letter: each poison batch is one JSON line with status and time", "[pipeline][dead_letter]") {
  temp_dir d;
  const std::string dir = dead_letter_file::default_dir(d.path.string(), "");
  CHECK(dir == (d.path / "dead-letter").string());
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

TEST_CASE("dead letter: a configured directory wins and an unusable one fails at startup",
          "[pipeline][dead_letter]") {
  CHECK(dead_letter_file::default_dir("/tmp/spool", "/var/dl") == "/var/dl");
  temp_dir d;
  std::ofstream(d.path / "file") << "x";
  CHECK_THROWS(dead_letter_file((d.path / "file" / "dl").string()));
}
