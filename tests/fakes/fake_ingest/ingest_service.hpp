// The fake Aforo ingest's behaviour: POST /v1/ingest/batch and /v1/ingest/test as Aforo answers them
// (headers, API key, LZ4 bodies, 1-1000 events, idempotencyKey deduplication, the 202 envelope),
// the fault script, what was received, and the /_control API that tests drive while it runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "fault_script.hpp"
#include "fake_server.hpp"
#include "io/http/router.hpp"

namespace aforo::fake {

struct ingest_options {
  std::string api_key;      ///< empty = any key is accepted (still reported as present/missing)
  std::string tenant;       ///< empty = any tenant
  bool bearer = false;      ///< expect Authorization: Bearer <key> instead of X-API-Key
  std::string record_file;  ///< append stored events as JSON lines; empty = off
  std::size_t max_events = 1000;
  /// Keep every accepted event for /_control/received (tests); benchmarks turn it off (--no-store):
  /// events are still validated, deduplicated and counted.
  bool store_events = true;
  /// Benchmarks where this fake shares the measured machine's cores (--count-only): a batch's events are
  /// counted by their "idempotencyKey" members and accepted, without parsing, validating or deduplicating
  /// them. Aforo's ingest is remote in production; this keeps its stand-in's CPU out of the measurement.
  bool count_only = false;
  /// A network between the sidecar and this ingest: every answer waits rtt_ms ± jitter_ms (uniform),
  /// as a remote ingest's would. 0 = loopback.
  std::uint32_t rtt_ms = 0;
  std::uint32_t jitter_ms = 0;
  /// More ingest requests than this in progress at once are answered 429 + Retry-After: 1 (as an
  /// ingest that limits each client's concurrency). 0 = no limit.
  std::uint32_t max_in_flight = 0;
  /// Refuse Content-Encoding: lz4 as a server without it would: 415 (Unsupported Media Type), or 400
  /// with a body naming the encoding; 0 = lz4 is decoded. Also settable with /_control/refuse_lz4.
  int refuse_lz4 = 0;
};

/// Threading: the io_context's single thread only.
class ingest_service {
 public:
  ingest_service(boost::asio::io_context& ioc, ingest_options opts);
  ~ingest_service();
  ingest_service(const ingest_service&) = delete;
  ingest_service& operator=(const ingest_service&) = delete;

  /// Adds the ingest and /_control routes.
  void add_routes(io::router& routes);
  /// The transport, for refusing connections and connection counts (set before serving).
  void attach(fake_server* server) { server_ = server; }

 private:
  struct request_record {
    std::uint64_t number = 0;
    std::string path, connection, content_type, content_encoding, api_key_state, tenant, user_agent, fault;
    std::size_t raw_bytes = 0, decoded_bytes = 0, events = 0, accepted = 0, duplicates = 0, failed = 0;
    int status = 0;                ///< 0 = dropped without an answer
    std::uint64_t arrived_us = 0;  ///< when it arrived: microseconds since the fake started (steady clock)
  };
  struct stored_event {
    std::uint64_t request = 0;
    std::size_t index = 0;
    std::string json;
  };

  void handle_ingest(io::http_request& req, io::respond_fn respond, bool single);
  io::http_response process(io::http_request& req, const fault_step& step, bool single, request_record& rec);
  io::http_response count_only(std::string_view body, request_record& rec);
  /// The 202 answer for rec's counts (errors: the JSON items of rejected events), added to the totals.
  io::http_response ack(const request_record& rec, const std::string& errors);
  void answer(io::respond_fn respond, io::http_response r, std::uint32_t delay_ms);

  io::http_response control_faults(io::http_request& req);
  io::http_response control_refuse(io::http_request& req);
  io::http_response control_received() const;
  io::http_response control_stats() const;
  io::http_response control_reset();
  /// {"max_events":N}: from now on, requests with more events are answered 413 (as --max-events).
  io::http_response control_max_events(io::http_request& req);
  /// {"rtt_ms":N,"jitter_ms":N,"max_in_flight":N} (each optional): the network model, live.
  io::http_response control_network(io::http_request& req);
  io::http_response control_refuse_lz4(io::http_request& req);
  /// The delay of one answer under the network model, plus `extra_ms`.
  std::uint32_t network_delay(std::uint32_t extra_ms);

  boost::asio::io_context& ioc_;
  ingest_options opts_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  fake_server* server_ = nullptr;
  fault_script faults_;
  std::FILE* record_ = nullptr;
  std::uint64_t requests_ = 0;
  std::uint32_t in_flight_ = 0;  // ingest requests arrived and not yet answered
  std::uint32_t peak_in_flight_ = 0;
  std::uint64_t over_limit_ = 0;  // answered 429 for max_in_flight
  std::uint64_t rng_state_ = 0x9E3779B97F4A7C15ull;
  std::uint64_t probes_ = 0;       // key checks: `{"events":[]}`, see handle_ingest
  std::uint64_t lz4_probes_ = 0;   // of those, sent as an lz4 frame (the encoding check)
  std::uint64_t lz4_refused_ = 0;  // requests and probes refused for their lz4 encoding
  std::vector<request_record> log_;
  std::vector<stored_event> events_;
  std::unordered_set<std::string> seen_keys_;
  std::map<int, std::uint64_t> by_status_;
  std::uint64_t events_received_ = 0, accepted_ = 0, duplicates_ = 0, failed_ = 0;
};

}  // namespace aforo::fake
