// The nesting limit on JSON (and YAML) from outside: the shared bounded parser (core/json/bounded_parse)
// and every parser of outside input refusing deep nesting without overflowing the stack.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "config/guards_yaml.hpp"
#include "config/loader.hpp"
#include "config/snapshot_yaml.hpp"
#include "core/discovery/catalog_json.hpp"
#include "core/discovery/event_observation.hpp"
#include "core/discovery/kong_admin.hpp"
#include "core/entitlements/check_request.hpp"
#include "core/entitlements/snapshot_json.hpp"
#include "core/json/bounded_parse.hpp"
#include "core/pipeline/event_validation.hpp"
#include "core/pipeline/ingest_ack.hpp"
#include "io/dead_letter.hpp"

using namespace aforo;
namespace json = aforo::core::json;

namespace {

// Far past what a recursive reader survives on an 8 MiB stack (the unbounded ingest parser crashed at
// 500,000 levels; each level costs it a few hundred bytes of stack).
constexpr std::size_t deep = 1'000'000;

std::string arrays(std::size_t n) { return std::string(n, '[') + std::string(n, ']'); }
std::string open_arrays(std::size_t n) { return std::string(n, '['); }
std::string objects(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += R"({"a":)";
  s += "1";
  s.append(n, '}');
  return s;
}

std::string compact(const rapidjson::Document& d) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  d.Accept(w);
  return {b.GetString(), b.GetSize()};
}

const std::string too_deep_64 = "JSON nested deeper than 64 levels";

}  // namespace

TEST_CASE("bounded JSON parse: 64 levels parse, 65 are refused with a clear message", "[json]") {
  CHECK(json::max_depth == 64);
  CHECK(json::too_deep_message() == too_deep_64);
  rapidjson::Document d;
  for (const auto& text : {arrays(64), objects(64)}) {
    const auto r = json::parse(d, text);
    CHECK(r.ok());
    CHECK(r.message().empty());
    CHECK(compact(d) == text);
  }
  for (const auto& text : {arrays(65), objects(65), open_arrays(65), "{\"events\":" + open_arrays(64)}) {
    const auto r = json::parse(d, text);
    CHECK_FALSE(r.ok());
    CHECK(r.too_deep);
    CHECK(r.message() == too_deep_64);
    CHECK(d.IsNull());
  }
  // A smaller limit, counted from the root as level 1.
  CHECK(json::parse(d, arrays(3), 3).ok());
  const auto r = json::parse(d, arrays(4), 3);
  CHECK(r.too_deep);
  CHECK(r.message() == "JSON nested deeper than 3 levels");
}

TEST_CASE("bounded JSON parse: a million levels, open or closed, are refused without recursing", "[json]") {
  rapidjson::Document d;
  CHECK(json::parse(d, open_arrays(deep)).too_deep);
  CHECK(json::parse(d, arrays(deep)).too_deep);
  CHECK(json::parse(d, objects(deep)).too_deep);
  CHECK(json::parse<rapidjson::kParseIterativeFlag>(d, arrays(deep)).too_deep);
  // Brackets inside strings are not nesting.
  const std::string in_string = "[\"" + open_arrays(deep) + "\"]";
  CHECK(json::parse(d, in_string).ok());
}

TEST_CASE("bounded JSON parse: the same document and errors as Document::Parse within the limit", "[json]") {
  const std::string cases[] = {
      R"({"events":[{"a":1,"b":[true,false,null],"c":"x\u00e9"}],"n":-1.5e3})",
      "\xEF\xBB\xBF{\"bom\":1}",                // a UTF-8 byte order mark is skipped
      std::string("{\"a\":1}\0{\"b\":2}", 15),  // the text ends at a NUL byte
      "{not json",
      "[1,2,",
      "",
      "  ",
      "{\"a\":1} x",
  };
  for (const auto& text : cases) {
    INFO(text);
    rapidjson::Document plain;
    plain.Parse(text.data(), text.size());
    rapidjson::Document bounded;
    const auto r = json::parse(bounded, text);
    CHECK(r.ok() == !plain.HasParseError());
    CHECK_FALSE(r.too_deep);
    if (plain.HasParseError()) {
      CHECK(r.result.Code() == plain.GetParseError());
      CHECK(r.result.Offset() == plain.GetErrorOffset());
      CHECK(r.message().rfind("malformed JSON at offset " + std::to_string(plain.GetErrorOffset()) + ": ", 0) == 0);
    } else {
      CHECK(compact(bounded) == compact(plain));
    }
  }
}

TEST_CASE("bounded JSON parse: depth_limited forwards every event to a SAX handler", "[json]") {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  json::depth_limited<rapidjson::Writer<rapidjson::StringBuffer>> bounded(w, 2);
  rapidjson::Reader reader;
  rapidjson::StringStream ok(R"({"a":[1,-2,3.5,"s",true,null,18446744073709551615]})");
  REQUIRE_FALSE(reader.Parse(ok, bounded).IsError());
  CHECK(std::string(b.GetString()) == R"({"a":[1,-2,3.5,"s",true,null,18446744073709551615]})");
  CHECK_FALSE(bounded.too_deep());

  rapidjson::StringBuffer b2;
  rapidjson::Writer<rapidjson::StringBuffer> w2(b2);
  json::depth_limited<rapidjson::Writer<rapidjson::StringBuffer>> bounded2(w2, 2);
  rapidjson::StringStream deep_in(R"({"a":[[1]]})");
  const auto r = reader.Parse(deep_in, bounded2);
  CHECK(r.Code() == rapidjson::kParseErrorTermination);
  CHECK(bounded2.too_deep());
}

TEST_CASE("deep nesting: ingest batch and single events are refused (400) without crashing", "[json][pipeline]") {
  for (const auto& body : {R"({"events":)" + open_arrays(deep), R"({"events":)" + arrays(deep) + "}",
                           R"({"events":[{"customerId":"c","metadata":)" + objects(deep) + "}]}"}) {
    const auto r = core::parse_ingest_batch(body, 1000);
    CHECK(r.error == core::ingest_request_error::malformed_json);
    CHECK(core::status_for(r.error) == 400);
    CHECK(r.error_message == too_deep_64);
    CHECK(core::build_ingest_error_body(r.error, r.error_message) ==
          R"({"error":{"code":"bad_request","message":"JSON nested deeper than 64 levels"}})");
  }
  for (const auto& body : {open_arrays(deep), R"({"metadata":)" + objects(deep) + "}"}) {
    const auto r = core::parse_ingest_single(body);
    CHECK(r.error == core::ingest_request_error::malformed_json);
    CHECK(r.error_message == too_deep_64);
  }
  // Nesting within the limit is parsed (and judged as an event, not as malformed JSON).
  const auto r = core::parse_ingest_single(R"({"metadata":{"x":)" + arrays(60) + "}}");
  CHECK(r.error == core::ingest_request_error::none);
}

TEST_CASE("deep nesting: a /v1/check body is refused with a clear message", "[json][entitlements][check]") {
  for (std::string body : {R"({"customer_id":"c","x":)" + open_arrays(deep), R"({"x":)" + objects(deep) + "}"}) {
    core::entitlements::check_request req;
    const auto e = core::entitlements::parse_check_request(body, req);
    REQUIRE(e.has_value());
    CHECK(*e == too_deep_64);
  }
  std::string ok = R"({"customer_id":"c","x":)" + arrays(63) + "}";
  core::entitlements::check_request req;
  CHECK_FALSE(core::entitlements::parse_check_request(ok, req).has_value());
}

TEST_CASE("deep nesting: snapshot JSON (file, control plane, Redis) and YAML are refused past 32 levels",
          "[json][entitlements][snapshot]") {
  // parse_snapshot_text reads text starting with '{' as JSON: the file source, the control plane's
  // answer and a Redis customer entry all go through parse_snapshot_json.
  for (const auto& text : {"{\"customers\":" + open_arrays(deep), "{\"customers\":" + arrays(deep) + "}",
                           "{\"customers\":" + objects(deep) + "}", objects(33)}) {
    const auto r = config::parse_snapshot_text(text);
    CHECK_FALSE(r.ok());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0] == "JSON nested deeper than 32 levels");
  }
  for (const auto& text : {open_arrays(deep), arrays(deep)}) {
    const auto r = core::entitlements::parse_snapshot_json(text);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0] == "JSON nested deeper than 32 levels");
  }
  std::string block;  // "- - - - ... x": one more nested sequence per "- "
  for (std::size_t i = 0; i < 100000; ++i) block += "- ";
  block += "x\n";
  std::string indented;  // a map per line, each indented one more column
  for (std::size_t i = 0; i < 3000; ++i) indented += std::string(i, ' ') + "a:\n";
  for (const auto& text :
       {"customers: " + arrays(deep), "customers: " + objects(deep), block, indented, "customers: " + arrays(40)}) {
    const auto r = config::parse_snapshot_text(text);
    CHECK_FALSE(r.ok());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0] == "YAML nested deeper than 32 levels");
  }
}

TEST_CASE("deep nesting: a guards YAML file and the config file are refused without crashing",
          "[json][margin][config]") {
  std::string block;
  for (std::size_t i = 0; i < 100000; ++i) block += "- ";
  block += "x\n";
  for (const auto& text :
       {"guards: " + open_arrays(deep), "guards: " + objects(deep), block, "guards: " + arrays(40)}) {
    const auto r = config::parse_guards_yaml(text);
    CHECK_FALSE(r.ok());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0] == "YAML nested deeper than 32 levels");
  }
  const auto c = config::load_config_text("server: " + arrays(deep));
  REQUIRE(c.errors.size() == 1);
  CHECK(c.errors[0] == "line 1: YAML nested too deeply");
}

TEST_CASE("deep nesting: Aforo's ingest ack, Kong Admin pages, the catalog state and events are refused",
          "[json][pipeline][discovery]") {
  const std::string ack = R"({"success":true,"data":{"accepted":1,"errors":)" + arrays(deep) + "}}";
  CHECK_FALSE(core::parse_ingest_ack(ack).has_value());
  CHECK(core::parse_ingest_ack(R"({"success":true,"data":{"accepted":1}})")->accepted == 1);

  const std::string page = R"({"data":)" + arrays(deep) + "}";
  CHECK(core::discovery::parse_services_page(page).error == too_deep_64);
  CHECK(core::discovery::parse_routes_page(page).error == too_deep_64);
  CHECK(core::discovery::parse_plugins_page(page).error == too_deep_64);

  CHECK(core::discovery::parse_catalog_state(R"({"services":)" + objects(deep) + "}").error == too_deep_64);
  CHECK_FALSE(core::discovery::observation_from_event(R"({"metadata":)" + objects(deep) + "}").has_value());
}

TEST_CASE("deep nesting: a dead-letter batch 100,000 levels deep is written without walking it", "[json][pipeline]") {
  const auto dir = std::filesystem::temp_directory_path() / ("aforo-json-depth-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    io::dead_letter_file dl(dir.string());
    const std::string batch = R"({"events":)" + arrays(100000) + "}";
    REQUIRE_FALSE(dl.append(batch, 1, 400, "2026-11-26T10:00:00Z"));
    REQUIRE_FALSE(dl.sync());
    std::ifstream in(dl.path());
    std::string line;
    REQUIRE(std::getline(in, line));
    CHECK(line.find(R"("batch":)" + batch) != std::string::npos);  // embedded as posted (one JSON object)
  }
  std::filesystem::remove_all(dir);
}
