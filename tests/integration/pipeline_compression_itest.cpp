// Compression that proves itself: the real daemon against the real aforo-fake-ingest
// refusing Content-Encoding: lz4 with 415 or with a 400 naming it. The handshake's encoding check, the
// fallback to uncompressed (one WARN, refused batches re-sent, nothing dead-lettered) and the re-try
// of lz4 after batch.compression_retry.
#include <string_view>

#include "pipeline_itest_support.hpp"

using namespace pipeline_itest;
using aforo::fake::fake_ingest_options;

namespace {

constexpr std::string_view fallback_warn = "WARN ingest 127.0.0.1 refused Content-Encoding: lz4";

std::size_t count(const std::string& hay, std::string_view needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size())) ++n;
  return n;
}

bool has(const std::string& hay, std::string_view needle) { return hay.find(needle) != std::string::npos; }

/// The requests the fake answered `status`, and of those how many carried Content-Encoding: lz4.
struct answered {
  std::size_t requests = 0;
  std::size_t lz4 = 0;
};
answered answered_with(fake_ingest_process& fake, int status) {
  auto d = fake.received();
  answered a;
  for (const auto& r : d["requests"].GetArray()) {
    if (r["status"].GetInt() != status) continue;
    ++a.requests;
    if (std::string_view(r["content_encoding"].GetString()) == "lz4") ++a.lz4;
  }
  return a;
}

std::string yaml(const fake_ingest_process& fake, const std::string& batch_extra = "") {
  return sidecar_yaml(fake.ingest_url(),
                      "batch: { max_events: 10, flush_interval: 50ms, compression: lz4" + batch_extra + " }\n");
}

/// The handshake is done with lz4 accepted (the fake answered its lz4 probe).
void wait_handshake(sidecar_process& sc, fake_ingest_process& fake) {
  REQUIRE(sc.proc().wait_for_output("INFO handshake ok", 5s));
  REQUIRE(wait_until([&] { return fake_stat(fake, "lz4_probes") == 1; }, 5s));
}

// Ingest takes lz4 at the handshake, then refuses it (a deployment in front of it changed): the
// batches refused for their encoding go again uncompressed, once each, and nothing is dead-lettered.
void refused_after_handshake(int status) {
  fake_ingest_process fake;
  sidecar_process sc(yaml(fake), sidecar_env());
  wait_handshake(sc, fake);
  CHECK(has(sc.client().get("/v1/handshake").body, R"("compression":{"configured":"lz4","effective":"lz4"})"));
  fake.refuse_lz4(status);

  auto c = sc.client();
  for (int b = 0; b < 5; ++b) REQUIRE(c.post("/v1/ingest/batch", batch("z", b * 10, b * 10 + 10)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 50; }, 10s));
  // The fake counts a batch before it answers: the sidecar's own count follows once it has the answer.
  REQUIRE(wait_until([&] { return metric(sc, "aforo_sidecar_events_delivered_total") == 50; }, 5s));
  check_exactly(received_keys(fake), "z", 0, 50);

  const auto refused = answered_with(fake, status);
  CHECK(refused.requests >= 1);
  CHECK(refused.lz4 == refused.requests);  // only lz4 requests were refused
  CHECK(fake_stat(fake, "lz4_refused") == refused.requests);
  const auto delivered = answered_with(fake, 202);
  CHECK(delivered.requests >= 5);
  CHECK(delivered.lz4 == 0);  // every event arrived uncompressed

  CHECK(metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"rejected_batch\"}") == 0);
  CHECK(metric(sc, "aforo_sidecar_events_delivered_total") == 50);
  CHECK(metric(sc, "aforo_sidecar_ingest_compression_refused_total") == static_cast<double>(refused.requests));
  CHECK(metric(sc, "aforo_sidecar_ingest_compression{encoding=\"lz4\"}") == 0);
  CHECK(metric(sc, "aforo_sidecar_ingest_compression{encoding=\"none\"}") == 1);
  CHECK(has(sc.client().get("/v1/handshake").body, R"("compression":{"configured":"lz4","effective":"none"})"));
  const auto out = sc.proc().output();
  INFO(out);
  CHECK(count(out, fallback_warn) == 1);  // one WARN however many batches were in flight
  CHECK(count(out, " WARN ") == 1);
  CHECK(!has(out, "ERROR"));
}

}  // namespace

TEST_CASE("compression: ingest refusing lz4 with 415 gets every event uncompressed, none dead-lettered, one WARN",
          "[pipeline][compression]") {
  refused_after_handshake(415);
}

TEST_CASE("compression: ingest refusing lz4 with a 400 naming the encoding gets every event uncompressed, one WARN",
          "[pipeline][compression]") {
  refused_after_handshake(400);
}

TEST_CASE("compression: the handshake finds lz4 refused before any batch goes out",
          "[pipeline][compression][handshake]") {
  fake_ingest_options o;
  o.refuse_lz4 = 415;
  fake_ingest_process fake(o);
  sidecar_process sc(yaml(fake), sidecar_env());
  REQUIRE(sc.proc().wait_for_output(fallback_warn, 5s));
  CHECK(fake_stat(fake, "lz4_probes") == 1);
  CHECK(fake_stat(fake, "lz4_refused") == 1);
  CHECK(fake_stat(fake, "requests") == 0);  // no batch yet: the probe found it
  CHECK(has(sc.client().get("/v1/handshake").body, R"("compression":{"configured":"lz4","effective":"none"})"));
  CHECK(metric(sc, "aforo_sidecar_ingest_compression{encoding=\"none\"}") == 1);

  auto c = sc.client();
  REQUIRE(c.post("/v1/ingest/batch", batch("h", 0, 10)).status == 202);
  REQUIRE(c.post("/v1/ingest/batch", batch("h", 10, 20)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 20; }, 5s));
  check_exactly(received_keys(fake), "h", 0, 20);
  CHECK(fake_stat(fake, "lz4_refused") == 1);  // no batch was ever sent as lz4
  CHECK(answered_with(fake, 202).lz4 == 0);
  CHECK(metric(sc, "aforo_sidecar_ingest_compression_refused_total") == 0);  // batches only
  CHECK(count(sc.proc().output(), fallback_warn) == 1);
}

TEST_CASE("compression: ingest that takes lz4 keeps getting lz4", "[pipeline][compression]") {
  fake_ingest_process fake;
  sidecar_process sc(yaml(fake), sidecar_env());
  wait_handshake(sc, fake);
  auto c = sc.client();
  for (int b = 0; b < 3; ++b) REQUIRE(c.post("/v1/ingest/batch", batch("k", b * 10, b * 10 + 10)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 30; }, 5s));
  check_exactly(received_keys(fake), "k", 0, 30);
  const auto delivered = answered_with(fake, 202);
  CHECK(delivered.requests >= 3);
  CHECK(delivered.lz4 == delivered.requests);
  CHECK(fake_stat(fake, "lz4_refused") == 0);
  CHECK(metric(sc, "aforo_sidecar_ingest_compression{encoding=\"lz4\"}") == 1);
  CHECK(metric(sc, "aforo_sidecar_ingest_compression{encoding=\"none\"}") == 0);
  CHECK(has(sc.client().get("/v1/handshake").body, R"("compression":{"configured":"lz4","effective":"lz4"})"));
  CHECK(!has(sc.proc().output(), "refused Content-Encoding"));
}

TEST_CASE("compression: lz4 is tried again after batch.compression_retry, refused quietly, then taken back",
          "[pipeline][compression]") {
  fake_ingest_options o;
  o.refuse_lz4 = 400;
  fake_ingest_process fake(o);
  sidecar_process sc(yaml(fake, ", compression_retry: 1s"), sidecar_env());
  REQUIRE(sc.proc().wait_for_output(fallback_warn, 5s));
  auto c = sc.client();

  // Past the interval: the next batch is the trial, refused again (no new WARN), sent again plain.
  std::this_thread::sleep_for(1200ms);  // kept: compression_retry (1 s) passing is what is tested
  REQUIRE(c.post("/v1/ingest/batch", batch("r", 0, 10)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 10; }, 5s));
  REQUIRE(sc.proc().wait_for_output("INFO ingest still refuses lz4 (400); uncompressed for another 1s", 2s));
  CHECK(fake_stat(fake, "lz4_refused") == 2);  // the handshake's probe and the trial
  CHECK(metric(sc, "aforo_sidecar_events_dead_lettered_total{reason=\"rejected_batch\"}") == 0);

  // Ingest learns lz4: the next trial is taken and lz4 stays.
  fake.refuse_lz4(0);
  std::this_thread::sleep_for(1200ms);  // kept: as above, the retry interval passing
  REQUIRE(c.post("/v1/ingest/batch", batch("r", 10, 20)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 20; }, 5s));
  REQUIRE(sc.proc().wait_for_output("INFO ingest 127.0.0.1 accepts lz4 again; compressing batches", 2s));
  REQUIRE(c.post("/v1/ingest/batch", batch("r", 20, 30)).status == 202);
  REQUIRE(wait_until([&] { return fake_stat(fake, "accepted") == 30; }, 5s));
  check_exactly(received_keys(fake), "r", 0, 30);
  CHECK(answered_with(fake, 202).lz4 == 2);  // the accepted trial and the batch after it
  CHECK(has(sc.client().get("/v1/handshake").body, R"("compression":{"configured":"lz4","effective":"lz4"})"));
  CHECK(metric(sc, "aforo_sidecar_ingest_compression{encoding=\"lz4\"}") == 1);
  CHECK(count(sc.proc().output(), fallback_warn) == 1);
}
