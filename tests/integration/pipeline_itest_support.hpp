// Shared helpers of the usage pipeline integration tests: event bodies, a sidecar wired to the fake
// ingest, metric reads, waiting, and what the fake received.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "fakes/fake_ingest/fake_ingest_process.hpp"
#include "support/testkit.hpp"

namespace pipeline_itest {

using namespace std::chrono_literals;
using aforo::fake::fake_ingest_process;
using aforo::testkit::sidecar_process;
using aforo::testkit::wait_until;

inline const std::string api_key = "test-key-0001";
inline const std::string tenant = "tenant-1";

/// A valid event with this idempotencyKey.
inline std::string event(const std::string& key) {
  return R"({"customerId":"cust_acme","metricName":"api_calls","quantity":1,"occurredAt":"2026-11-26T10:00:00Z",)"
         R"("idempotencyKey":")" +
         key +
         R"(","endpointPath":"/v1/search/items","httpMethod":"GET","statusCode":200,)"
         R"("metadata":{"gateway":"kong","service":"search","route":"search-v1"}})";
}

inline std::string key(const std::string& prefix, int i) { return prefix + "-" + std::to_string(i); }

/// `{"events":[...]}` of keys prefix-from .. prefix-(to-1).
inline std::string batch(const std::string& prefix, int from, int to) {
  std::string s = R"({"events":[)";
  for (int i = from; i < to; ++i) s += (i == from ? "" : ",") + event(key(prefix, i));
  return s + "]}";
}

/// A sidecar delivering to `ingest_url`; `extra` is YAML appended (sections batch, retry, buffer...).
/// The spool lives in the sidecar's temp dir unless `extra` has a buffer section (use {dir}).
inline std::string sidecar_yaml(const std::string& ingest_url, const std::string& extra) {
  return "aforo:\n  ingest_url: \"" + ingest_url + "\"\n  connect_timeout: 1s\n" + extra;
}

inline std::vector<std::string> sidecar_env() { return {"AFORO_API_KEY=" + api_key, "AFORO_TENANT_ID=" + tenant}; }

/// The value of one /metrics series (name with its labels, e.g. `x_total{reason="a"}`); -1 if absent.
inline double metric(const sidecar_process& sc, const std::string& series) { return sc.metric(series); }

inline std::uint64_t fake_stat(fake_ingest_process& fake, const char* name) {
  auto d = fake.stats();
  return d.HasMember(name) ? d[name].GetUint64() : 0;
}

/// The idempotencyKeys the fake stored (each at most once: it deduplicates), in arrival order.
inline std::vector<std::string> received_keys(fake_ingest_process& fake) {
  auto d = fake.received();
  std::vector<std::string> out;
  for (const auto& e : d["events"].GetArray()) out.emplace_back(e["event"]["idempotencyKey"].GetString());
  return out;
}

/// Every key of prefix-from .. prefix-(to-1) appears in `keys` exactly once, and nothing else does.
inline void check_exactly(const std::vector<std::string>& keys, const std::string& prefix, int from, int to) {
  std::map<std::string, int> seen;
  for (const auto& k : keys) ++seen[k];
  for (int i = from; i < to; ++i) {
    INFO("key " << key(prefix, i));
    CHECK(seen[key(prefix, i)] == 1);
  }
  CHECK(keys.size() == static_cast<std::size_t>(to - from));
}

/// Index of a key "prefix-N".
inline int index_of(const std::string& k) { return std::atoi(k.c_str() + k.rfind('-') + 1); }

}  // namespace pipeline_itest
