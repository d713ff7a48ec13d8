// aforo-fake-ingest: a fake Aforo ingest for tests and for the README's local run (a local ingest
// sink). Prints "listening on http(s)://HOST:PORT" on stderr once bound; SIGTERM/SIGINT stop it.
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "fake_server.hpp"
#include "ingest_service.hpp"

namespace {

constexpr const char* usage =
    "usage: aforo-fake-ingest [--listen HOST:PORT] [--api-key KEY] [--tenant ID] [--auth x-api-key|bearer]\n"
    "                         [--tls-cert PEM --tls-key PEM] [--record FILE] [--max-events N]\n"
    "                         [--no-store] [--count-only] [--rtt-ms N] [--jitter-ms N] [--max-in-flight N]\n"
    "                         [--refuse-lz4 415|400]\n"
    "  --listen    address to bind (default 127.0.0.1:0, a free port)\n"
    "  --api-key   expected key (or env FAKE_INGEST_API_KEY); none = any key is accepted\n"
    "  --tenant    expected X-Tenant-Id; none = any\n"
    "  --auth      x-api-key (X-API-Key + X-Tenant-Id, default) or bearer (Authorization: Bearer)\n"
    "  --tls-*     serve HTTPS with this certificate chain and key\n"
    "  --record    append every stored event to FILE as one JSON line\n"
    "  --no-store  do not keep events for /_control/received (benchmarks); they are still validated,\n"
    "              deduplicated and counted\n"
    "  --count-only  accept every batch's events, counted by their idempotencyKey members, without\n"
    "              parsing, validating or deduplicating them (benchmarks on the measured machine)\n"
    "  --rtt-ms, --jitter-ms  answer every request after N ms (+- jitter): a network round trip\n"
    "  --max-in-flight  answer 429 + Retry-After: 1 past N requests in progress at once\n"
    "  --refuse-lz4  refuse Content-Encoding: lz4 as a server without it: 415, or 400 naming the encoding\n"
    "Control API on the same port: POST /_control/faults, POST /_control/refuse, GET /_control/received,\n"
    "GET /_control/stats, POST /_control/reset, POST /_control/max_events, POST /_control/network,\n"
    "POST /_control/refuse_lz4 {\"status\":0|400|415}.\n";

}  // namespace

int main(int argc, char** argv) {
  aforo::fake::fake_server_options server_opts;
  aforo::fake::ingest_options ingest_opts;
  if (const char* k = std::getenv("FAKE_INGEST_API_KEY")) ingest_opts.api_key = k;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "missing value for " << arg << "\n" << usage;
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--listen")
      server_opts.listen = value();
    else if (arg == "--api-key")
      ingest_opts.api_key = value();
    else if (arg == "--tenant")
      ingest_opts.tenant = value();
    else if (arg == "--auth")
      ingest_opts.bearer = value() == "bearer";
    else if (arg == "--tls-cert")
      server_opts.tls_cert = value();
    else if (arg == "--tls-key")
      server_opts.tls_key = value();
    else if (arg == "--record")
      ingest_opts.record_file = value();
    else if (arg == "--max-events")
      ingest_opts.max_events = std::stoul(value());
    else if (arg == "--no-store")
      ingest_opts.store_events = false;
    else if (arg == "--rtt-ms")
      ingest_opts.rtt_ms = static_cast<std::uint32_t>(std::stoul(value()));
    else if (arg == "--jitter-ms")
      ingest_opts.jitter_ms = static_cast<std::uint32_t>(std::stoul(value()));
    else if (arg == "--max-in-flight")
      ingest_opts.max_in_flight = static_cast<std::uint32_t>(std::stoul(value()));
    else if (arg == "--refuse-lz4") {
      ingest_opts.refuse_lz4 = std::stoi(value());
      if (ingest_opts.refuse_lz4 != 400 && ingest_opts.refuse_lz4 != 415) {
        std::cerr << "--refuse-lz4 takes 415 or 400\n" << usage;
        return 2;
      }
    } else if (arg == "--count-only") {
      ingest_opts.count_only = true;
      ingest_opts.store_events = false;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    } else {
      std::cerr << "unknown option " << arg << "\n" << usage;
      return 2;
    }
  }
  try {
    boost::asio::io_context ioc;
    aforo::io::router routes;
    aforo::fake::ingest_service service(ioc, ingest_opts);
    service.add_routes(routes);
    aforo::fake::fake_server server(ioc, routes, server_opts);
    service.attach(&server);
    server.start();
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&ioc](boost::system::error_code, int) { ioc.stop(); });
    std::cerr << "listening on " << server.url() << std::endl;
    ioc.run();
  } catch (const std::exception& e) {
    std::cerr << "aforo-fake-ingest: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
