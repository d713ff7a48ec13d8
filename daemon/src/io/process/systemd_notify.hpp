// systemd service notifications (sd_notify protocol): readiness, reload, stop and watchdog pings.
// A small implementation of the documented, stable datagram protocol (sd_notify(3)) instead of
// linking libsystemd: one sendto() on an AF_UNIX datagram socket named by $NOTIFY_SOCKET.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace aforo::io::systemd {

/// Sends one notification ("READY=1", "STOPPING=1", "STATUS=...", several joined by '\n') to the
/// socket in $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Returns true when it
/// was sent, false when $NOTIFY_SOCKET is unset (not under systemd) or sending failed; never throws.
/// Thread-safe (a socket per call).
bool notify(std::string_view state);

/// "READY=1" plus a STATUS line; call once listeners are bound and services started.
bool notify_ready(std::string_view status);
/// "RELOADING=1" with MONOTONIC_USEC (needed by Type=notify-reload); follow with notify_ready().
bool notify_reloading();
/// "STOPPING=1"; call when a stop signal arrives, before draining.
bool notify_stopping();

/// The watchdog interval systemd expects pings within ($WATCHDOG_USEC, honouring $WATCHDOG_PID),
/// or nullopt when the unit has no WatchdogSec= or the variables are meant for another process.
std::optional<std::chrono::microseconds> watchdog_interval();

/// Sends "WATCHDOG=1" every half watchdog interval from a timer on the io_context, so a wedged
/// event loop stops the pings and systemd restarts the service. Not thread-safe: use on the
/// io_context's thread.
class watchdog {
 public:
  explicit watchdog(boost::asio::io_context& ioc) : timer_(ioc) {}
  /// Starts pinging if the unit asked for a watchdog; returns the ping period, or nullopt (no-op).
  std::optional<std::chrono::microseconds> start();
  void stop() { timer_.cancel(); }

 private:
  void arm();
  boost::asio::steady_timer timer_;
  std::chrono::microseconds period_{0};
};

}  // namespace aforo::io::systemd
