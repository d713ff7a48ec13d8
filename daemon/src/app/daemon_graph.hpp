// Every service of the daemon, built in one place: each is a member of daemon_graph, declared after
// what it depends on and handed its dependencies in its constructor. Adding a capability means adding
// its member here (and to the lists in daemon_graph.cpp).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "app/decisions/decision_service.hpp"
#include "app/discovery/discovery_service.hpp"
#include "app/entitlements/entitlements_sharing.hpp"
#include "app/entitlements/snapshot_in_force.hpp"
#include "app/margin/margin_service.hpp"
#include "app/ops/ops_service.hpp"
#include "app/pipeline/handshake_service.hpp"
#include "app/pipeline/pipeline_service.hpp"
#include "app/service.hpp"

namespace aforo::app {

/// The object graph of a running daemon. Lifetime rule: members are built in declaration order and
/// destroyed in reverse, and the services are started in declaration order and stopped in reverse
/// (stop() here, one after another), so whatever a member uses was built before it, is started before
/// it, is stopped after it and is destroyed after it. The sidecar builds the graph before its
/// io_context runs and destroys it after run() returned, so no handler of any member runs once
/// destruction has begun: callbacks between services need no guard against a peer's destruction.
/// Debug log lines ("service <name> started", "stopping service <name>", "service <name> stopped")
/// show both orders. Threading: io thread only.
class daemon_graph {
 public:
  /// Builds every service (throws std::runtime_error with a clear message on a startup error: a bad
  /// guard file, an unusable spool directory, a malformed cache.redis...).
  explicit daemon_graph(context& ctx);
  ~daemon_graph();
  daemon_graph(const daemon_graph&) = delete;
  daemon_graph& operator=(const daemon_graph&) = delete;

  void register_routes(io::router& routes);
  /// Starts every service, in declaration order.
  void start();
  /// A new config passed validation: every service applies what it can, in declaration order.
  void reload(const config::sidecar_config& next);
  /// Stops every service in reverse declaration order, each once the one after it has called its
  /// done (posted to the io thread), then calls `done`.
  void stop(std::function<void()> done);
  /// Every service's persist_now(), in reverse declaration order, all of them even after a false;
  /// false when any could not persist what it acknowledged.
  bool persist_now();

  [[nodiscard]] ops_service& ops() { return ops_; }
  /// The services in declaration (start) order.
  [[nodiscard]] const std::vector<service*>& services() const { return order_; }

 private:
  void stop_from(std::size_t n, std::function<void()> done);

  context& ctx_;
  // ---- dependency order: each member uses only those above it ----
  /// What the sidecars of a cluster share: Redis with cache.redis, else nothing (local). The one
  /// reference against the order: margin_, built after, registers its COGS counters here; they are
  /// read only at decisions_'s sync and in Redis replies, which run on the io loop, over before
  /// margin_ is destroyed.
  std::unique_ptr<entitlements_sharing> sharing_;
  snapshot_in_force snapshot_;  // written by decisions_, read by margin_
  margin_service margin_;       // shares COGS and claims webhooks through sharing_ (cache.redis)
  decision_service decisions_;  // consults margin_, shares through sharing_, publishes to snapshot_
  discovery_service discovery_;
  ingest_status ingest_;         // fed by pipeline_ and handshake_, reported by handshake_
  pipeline_service pipeline_;    // feeds ingest_, margin_ and discovery_
  handshake_service handshake_;  // probes ingest over pipeline_'s connection
  ops_service ops_;              // reports the readiness and handshake facts of all of the above
  // ----
  std::vector<service*> order_;     // the services above, in declaration order
  std::vector<const char*> names_;  // order_'s names in the debug lines
};

}  // namespace aforo::app
