// The daemon's lifecycle: bind, serve, reload on SIGHUP, drain on SIGTERM/SIGINT.
#include "app/sidecar.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "app/daemon_graph.hpp"
#include "io/process/systemd_notify.hpp"
#include "config/loader.hpp"
#include "io/http/http_server.hpp"
#include "util/log.hpp"

namespace aforo::app {

namespace asio = boost::asio;

namespace {
io::server_limits limits_of(const config::sidecar_config& c) {
  return io::server_limits{c.server.max_body, c.server.max_header, c.server.read_timeout, c.server.max_connections};
}
}  // namespace

struct sidecar::impl {
  asio::io_context ioc{1};
  context ctx;
  daemon_graph graph;  // after the context it uses, before the routes and server that reach into it
  io::router routes;
  io::http_server server;
  asio::signal_set stop_signals{ioc, SIGTERM, SIGINT};
  asio::signal_set hup_signal{ioc, SIGHUP};
  asio::steady_timer shutdown_deadline{ioc};
  io::systemd::watchdog watchdog{ioc};  // WATCHDOG=1 pings when the unit sets WatchdogSec=
  std::string serving;                  // STATUS= text sent with READY=1
  bool stopping = false;
  int exit_code = 0;

  impl(config::sidecar_config cfg, config::secrets sec, std::string path)
      : ctx{ioc, std::move(cfg), std::move(sec), std::move(path)},
        graph(ctx),
        server(ioc, routes, limits_of(ctx.config)) {
    graph.register_routes(routes);
    // The probes and the scrape stay open: they reveal no customer data and change nothing.
    routes.require_bearer(ctx.secrets.api_token, {"/healthz", "/readyz", "/metrics"});
  }

  void wait_stop() {
    stop_signals.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      begin_stop(signo);
    });
  }

  void wait_hup() {
    hup_signal.async_wait([this](const boost::system::error_code& ec, int) {
      if (ec) return;
      io::systemd::notify_reloading();
      reload();
      io::systemd::notify_ready(serving);
      wait_hup();
    });
  }

  void begin_stop(int signo) {
    if (stopping) return;
    stopping = true;
    io::systemd::notify_stopping();
    util::log::info(std::string("received ") + (signo == SIGINT ? "SIGINT" : "SIGTERM") +
                    ": no new connections, finishing requests in flight");
    shutdown_deadline.expires_after(ctx.config.server.shutdown_timeout);
    shutdown_deadline.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      util::log::warn("shutdown_timeout reached with work in flight; persisting what was acknowledged and exiting");
      if (!graph.persist_now()) {
        util::log::error("shutdown: acknowledged events could not all be persisted (see above); exiting with status 1");
        exit_code = 1;
      }
      ioc.stop();
    });
    // The server first (no new request reaches a service), then the services in reverse build order.
    server.stop([this] { graph.stop([this] { stopped(); }); });
  }

  // Every service stopped (each may have flushed or persisted): the loop ends.
  void stopped() {
    if (!graph.persist_now()) exit_code = 1;  // already stopped: reports what stop() could not persist
    if (exit_code != 0) {
      util::log::error("shutdown: acknowledged events could not all be persisted (see above); exiting with status 1");
    }
    util::log::info("stopped");
    shutdown_deadline.cancel();
    ioc.stop();
  }

  void reload() {
    if (ctx.config_path.empty()) {
      util::log::info("SIGHUP: no config file in use (built-in defaults); nothing to reload");
      return;
    }
    auto r = config::load_config_file(ctx.config_path);
    if (!r.ok()) {
      util::log::error("SIGHUP: " + ctx.config_path + " has " + std::to_string(r.errors.size()) +
                       " problem(s); keeping the config in force");
      for (const auto& e : r.errors) util::log::error("config: " + e);
      return;
    }
    const auto changes = config::diff(ctx.config, r.config);
    std::string live, restart;
    for (const auto& c : changes) {
      auto& list = c.when == config::reload::live ? live : restart;
      if (!list.empty()) list += ", ";
      list += c.key;
    }
    if (changes.empty()) {
      util::log::info("SIGHUP: config reloaded, no changes");
    } else {
      if (!live.empty()) util::log::info("SIGHUP: applied " + live);
      if (!restart.empty()) util::log::warn("SIGHUP: changed but need a restart to take effect: " + restart);
    }
    // Keys that need a restart keep their running values until the next start.
    ctx.config = config::merge_live(ctx.config, r.config);
    util::log::set_level(ctx.config.log.level);
    server.set_limits(limits_of(ctx.config));
    graph.reload(ctx.config);
  }
};

sidecar::sidecar(config::sidecar_config cfg, config::secrets sec, std::string config_path)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(sec), std::move(config_path))) {}

sidecar::~sidecar() = default;

int sidecar::run() {
  auto& m = *impl_;
  util::log::set_level(m.ctx.config.log.level);
  for (const auto& address : m.ctx.config.listen) {
    const auto bound = m.server.listen(address, m.ctx.config.server.socket_mode);
    util::log::info("listening on " + (bound.rfind("unix:", 0) == 0 ? bound : "http://" + bound));
    m.serving += (m.serving.empty() ? "serving on " : ", ") + bound;
  }
  m.graph.start();
  m.server.start();
  m.graph.ops().set_listening(true);
  m.wait_stop();
  m.wait_hup();
  util::log::info("aforo-sidecar " AFORO_VERSION " ready (tenant " +
                  (m.ctx.secrets.tenant_id.empty() ? std::string("unset") : m.ctx.secrets.tenant_id) + ", api key " +
                  config::redact(m.ctx.secrets.api_key) + ", local API token " +
                  (m.ctx.secrets.api_token.empty() ? "off" : "required") + ")");
  io::systemd::notify_ready(m.serving);
  m.watchdog.start();
  m.ioc.run();
  return m.exit_code;
}

}  // namespace aforo::app
