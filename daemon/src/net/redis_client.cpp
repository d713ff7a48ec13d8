// Asynchronous Redis client: hiredis async context whose socket readiness is watched by
// asio::posix::stream_descriptor::async_wait (the hiredis event hooks add/del read/write), commands
// queued FIFO with one deadline timer, reconnect with backoff. The only file that includes hiredis.
#include "net/redis_client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

#include "config/secrets.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::net {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;

const char* to_string(redis_error e) {
  switch (e) {
    case redis_error::none: return "none";
    case redis_error::not_connected: return "not_connected";
    case redis_error::timeout: return "timeout";
    case redis_error::connection_lost: return "connection_lost";
  }
  return "unknown";
}

namespace {

bool parse_int(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

redis_value convert(const redisReply* r) {
  redis_value v;
  switch (r->type) {
    case REDIS_REPLY_STRING: v.type = redis_value::kind::string; v.str.assign(r->str, r->len); break;
    case REDIS_REPLY_STATUS: v.type = redis_value::kind::status; v.str.assign(r->str, r->len); break;
    case REDIS_REPLY_ERROR: v.type = redis_value::kind::error; v.str.assign(r->str, r->len); break;
    case REDIS_REPLY_INTEGER: v.type = redis_value::kind::integer; v.integer = r->integer; break;
    case REDIS_REPLY_ARRAY:
      v.type = redis_value::kind::array;
      v.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
      break;
    default: v.type = redis_value::kind::nil; break;
  }
  return v;
}

}  // namespace

std::optional<redis_endpoint> parse_redis_url(std::string_view url, std::string& error) {
  auto u = boost::urls::parse_uri(url);
  if (!u) {
    error = "'" + config::redact_url(std::string(url)) + "' is not a URL";
    return std::nullopt;
  }
  redis_endpoint ep;
  if (u->scheme() == "unix") {
    ep.unix_path = std::string(u->path());
    if (ep.unix_path.empty() || ep.unix_path[0] != '/') {
      error = "unix: needs an absolute socket path";
      return std::nullopt;
    }
    auto params = u->params();
    if (auto it = params.find("db"); it != params.end()) {
      if (!(*it).has_value || !parse_int((*it).value, ep.db) || ep.db < 0) {
        error = "db must be a number >= 0";
        return std::nullopt;
      }
    }
    return ep;
  }
  if (u->scheme() != "redis") {
    error = "scheme must be redis:// or unix:";
    return std::nullopt;
  }
  ep.host = std::string(u->host_address());
  if (ep.host.empty()) {
    error = "redis:// needs a host";
    return std::nullopt;
  }
  if (u->has_port()) {
    if (u->port_number() == 0) {
      error = "port must be 1..65535";
      return std::nullopt;
    }
    ep.port = u->port_number();
  }
  std::string path(u->path());
  if (!path.empty() && path != "/") {
    if (!parse_int(std::string_view(path).substr(1), ep.db) || ep.db < 0) {
      error = "the path must be the database number, e.g. /0";
      return std::nullopt;
    }
  }
  if (u->has_userinfo()) {
    ep.user = std::string(u->user());
    ep.password = std::string(u->password());
  }
  return ep;
}

struct redis_client::impl : std::enable_shared_from_this<impl> {
  enum class phase { idle, resolving, connecting, handshaking, ready, backoff };

  // Watches hiredis's socket; lives (through handler copies) until its last wait completes.
  struct fd_watch : std::enable_shared_from_this<fd_watch> {
    asio::posix::stream_descriptor sd;
    redisAsyncContext* ac;
    impl* owner;
    bool want_read = false, want_write = false, read_armed = false, write_armed = false;

    fd_watch(asio::io_context& ioc, redisAsyncContext* c, impl* o) : sd(ioc, c->c.fd), ac(c), owner(o) {}

    void arm(bool read) {
      bool& armed = read ? read_armed : write_armed;
      if (armed || ac == nullptr) return;
      armed = true;
      sd.async_wait(read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write,
                    [self = shared_from_this(), read](const boost::system::error_code& ec) {
                      (read ? self->read_armed : self->write_armed) = false;
                      if (ec || self->ac == nullptr) return;
                      if (read ? !self->want_read : !self->want_write) return;
                      if (read) {
                        redisAsyncHandleRead(self->ac);
                      } else {
                        redisAsyncHandleWrite(self->ac);
                      }
                      if (self->ac != nullptr && (read ? self->want_read : self->want_write)) self->arm(read);
                    });
    }

    // hiredis is freeing the context (it closes the fd itself).
    void detach() {
      ac = nullptr;
      boost::system::error_code ignored;
      sd.cancel(ignored);
      (void)sd.release();
    }

    static void add_read(void* d) { auto* w = static_cast<fd_watch*>(d); w->want_read = true; w->arm(true); }
    static void del_read(void* d) { static_cast<fd_watch*>(d)->want_read = false; }
    static void add_write(void* d) { auto* w = static_cast<fd_watch*>(d); w->want_write = true; w->arm(false); }
    static void del_write(void* d) { static_cast<fd_watch*>(d)->want_write = false; }
    static void cleanup(void* d) {
      auto* w = static_cast<fd_watch*>(d);
      std::string reason = (w->ac != nullptr && w->ac->errstr != nullptr) ? w->ac->errstr : "";
      impl* o = w->owner;
      w->detach();
      o->context_gone(std::move(reason));
    }
  };

  struct pending {
    redis_callback cb;
    clock_type::time_point deadline;
    bool internal = false;  // the connection's own AUTH/SELECT: handled inline
  };

  asio::io_context& ioc;
  redis_client_options opt;
  core::entitlements::redis_link link;
  phase ph = phase::idle;
  redisAsyncContext* ac = nullptr;
  std::shared_ptr<fd_watch> watch;
  asio::steady_timer retry_timer;     // connect timeout, then backoff
  asio::steady_timer deadline_timer;  // the oldest command's deadline
  asio::ip::tcp::resolver resolver;
  std::uint64_t retry_gen = 0, deadline_gen = 0;
  bool deadline_armed = false;
  std::deque<pending*> queue;  // FIFO, as Redis answers
  std::size_t handshake_left = 0;
  redis_error closing_error = redis_error::connection_lost;
  std::string closing_reason;
  bool destroying = false;
  std::function<void(bool)> state_fn;
  util::gauge_metric& up_gauge;
  util::counter_metric& connects;

  impl(asio::io_context& io, redis_client_options o)
      : ioc(io),
        opt(std::move(o)),
        link(opt.backoff_initial, opt.backoff_max),
        retry_timer(io),
        deadline_timer(io),
        resolver(io),
        up_gauge(util::metrics().gauge("aforo_sidecar_redis_up", "1 when the Redis edge cache answers, else 0")),
        connects(util::metrics().counter("aforo_sidecar_redis_connects_total", "Connections established to Redis")) {}

  static util::counter_metric& error_counter(std::string_view kind) {
    return util::metrics().counter("aforo_sidecar_redis_errors_total",
                                   "Redis commands that failed, by kind (not_connected, timeout, connection_lost, reply)",
                                   "kind=\"" + std::string(kind) + "\"");
  }

  std::string where() const {
    return opt.endpoint.unix_path.empty() ? opt.endpoint.host + ":" + std::to_string(opt.endpoint.port)
                                          : "unix:" + opt.endpoint.unix_path;
  }

  // ---- connecting -------------------------------------------------------------------------

  void arm_retry(std::chrono::milliseconds after, void (impl::*fn)()) {
    const auto gen = ++retry_gen;
    retry_timer.expires_after(after);
    retry_timer.async_wait([w = weak_from_this(), gen, fn](const boost::system::error_code& ec) {
      auto self = w.lock();
      if (ec || !self || gen != self->retry_gen) return;
      ((*self).*fn)();
    });
  }

  void connect() {
    if (destroying) return;
    arm_retry(opt.connect_timeout, &impl::connect_timed_out);
    if (!opt.endpoint.unix_path.empty()) {
      ph = phase::connecting;
      attach(redisAsyncConnectUnix(opt.endpoint.unix_path.c_str()));
      return;
    }
    ph = phase::resolving;
    resolver.async_resolve(opt.endpoint.host, std::to_string(opt.endpoint.port),
                           [w = weak_from_this()](const boost::system::error_code& ec,
                                                  const asio::ip::tcp::resolver::results_type& results) {
                             auto self = w.lock();
                             if (!self || self->ph != phase::resolving) return;
                             if (ec || results.empty()) {
                               self->failure("cannot resolve " + self->opt.endpoint.host + ": " + ec.message());
                               return;
                             }
                             const auto ep = results.begin()->endpoint();
                             self->ph = phase::connecting;
                             self->attach(redisAsyncConnect(ep.address().to_string().c_str(), ep.port()));
                           });
  }

  void connect_timed_out() {
    if (ph == phase::resolving) {
      resolver.cancel();
      failure("connect to " + where() + " timed out");
    } else if ((ph == phase::connecting || ph == phase::handshaking) && ac != nullptr) {
      close(redis_error::timeout, "connect to " + where() + " timed out");
    }
  }

  void attach(redisAsyncContext* c) {
    if (c == nullptr) {
      failure("out of memory");
      return;
    }
    if (c->err != 0) {
      std::string reason = c->errstr;
      redisAsyncFree(c);
      failure(reason);
      return;
    }
    ac = c;
    ac->data = this;
    watch = std::make_shared<fd_watch>(ioc, ac, this);
    ac->ev.data = watch.get();
    ac->ev.addRead = &fd_watch::add_read;
    ac->ev.delRead = &fd_watch::del_read;
    ac->ev.addWrite = &fd_watch::add_write;
    ac->ev.delWrite = &fd_watch::del_write;
    ac->ev.cleanup = &fd_watch::cleanup;
    redisAsyncSetConnectCallback(ac, &impl::on_connect);  // after the hooks: it asks for writability
  }

  static void on_connect(const redisAsyncContext* c, int status) {
    auto* self = static_cast<impl*>(c->data);
    if (status != REDIS_OK) return;  // hiredis frees the context next: cleanup reports the reason
    self->handshake();
  }

  void handshake() {
    ph = phase::handshaking;
    std::vector<std::vector<std::string>> cmds;
    if (!opt.endpoint.password.empty()) {
      if (opt.endpoint.user.empty()) {
        cmds.push_back({"AUTH", opt.endpoint.password});
      } else {
        cmds.push_back({"AUTH", opt.endpoint.user, opt.endpoint.password});
      }
    }
    if (opt.endpoint.db != 0) cmds.push_back({"SELECT", std::to_string(opt.endpoint.db)});
    cmds.push_back({"PING"});  // connected means Redis answers, not just that the port accepted
    handshake_left = cmds.size();
    for (auto& c : cmds) {
      std::string what = c[0];
      send(std::move(c), [this, what](redis_result r) {
        // Once one step failed and the connection is closing, the rest fail too: keep the first cause
        // (e.g. "AUTH failed: WRONGPASS ..."), not "PING failed: connection_lost".
        if (ph != phase::handshaking || !closing_reason.empty()) return;
        if (!r.ok_reply()) {
          const std::string why = !r.ok() ? to_string(r.error) : r.reply.str;
          close(redis_error::connection_lost, what + " failed: " + why);
          return;
        }
        if (--handshake_left == 0) became_ready();
      }, true);
    }
  }

  void became_ready() {
    ph = phase::ready;
    ++retry_gen;  // the connect timeout no longer applies
    retry_timer.cancel();
    connects.inc();
    up_gauge.set(1);
    if (link.on_connected()) {
      util::log::info("redis connected (" + where() + ")");
      notify(true);
    }
  }

  // ---- failing ----------------------------------------------------------------------------

  // Frees the live context; hiredis fails every pending callback, then cleanup -> context_gone.
  void close(redis_error why, std::string reason) {
    closing_error = why;
    closing_reason = std::move(reason);
    redisAsyncFree(ac);  // inside a hiredis callback this is deferred until it returns
  }

  void context_gone(std::string hiredis_reason) {
    ac = nullptr;
    watch.reset();
    ++deadline_gen;
    deadline_armed = false;
    deadline_timer.cancel();
    fail_queue(closing_error);  // normally empty: hiredis already failed them
    std::string reason = closing_reason.empty() ? hiredis_reason : closing_reason;
    closing_error = redis_error::connection_lost;
    closing_reason.clear();
    if (destroying || ph == phase::idle) return;
    failure(reason.empty() ? std::string("connection closed") : reason);
  }

  void failure(const std::string& reason) {
    const bool was_up = ph == phase::ready;
    ph = phase::backoff;
    up_gauge.set(0);
    const auto a = link.on_failure();
    if (a.log) util::log::warn("redis unavailable: " + reason + "; answering from the in-memory cache");
    if (was_up) notify(false);
    arm_retry(a.retry_in, &impl::connect);
  }

  void fail_queue(redis_error e) {
    while (!queue.empty()) {
      pending* p = queue.front();
      queue.pop_front();
      finish(p, redis_result{e, {}});
    }
  }

  void notify(bool up) {
    if (!state_fn) return;
    asio::post(ioc, [w = weak_from_this(), up] {
      if (auto self = w.lock(); self && self->state_fn) self->state_fn(up);
    });
  }

  // ---- commands ---------------------------------------------------------------------------

  void send(std::vector<std::string> args, redis_callback cb, bool internal = false) {
    if (ac == nullptr || (ph != phase::ready && !internal)) {
      error_counter("not_connected").inc();
      asio::post(ioc, [cb = std::move(cb)] { cb(redis_result{redis_error::not_connected, {}}); });
      return;
    }
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* p = new pending{std::move(cb), clock_type::now() + opt.command_timeout, internal};
    if (redisAsyncCommandArgv(ac, &impl::on_reply, p, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
        REDIS_OK) {
      error_counter("not_connected").inc();
      asio::post(ioc, [cb = std::move(p->cb)] { cb(redis_result{redis_error::not_connected, {}}); });
      delete p;
      return;
    }
    queue.push_back(p);
    if (!deadline_armed) arm_deadline(p->deadline);
  }

  void arm_deadline(clock_type::time_point at) {
    deadline_armed = true;
    const auto gen = ++deadline_gen;
    deadline_timer.expires_at(at);
    deadline_timer.async_wait([w = weak_from_this(), gen](const boost::system::error_code& ec) {
      auto self = w.lock();
      if (ec || !self || gen != self->deadline_gen) return;
      self->deadline_armed = false;
      self->check_deadline();
    });
  }

  void check_deadline() {
    if (queue.empty() || ac == nullptr) return;
    if (queue.front()->deadline <= clock_type::now()) {
      close(redis_error::timeout,
            "no reply within " + std::to_string(opt.command_timeout.count()) + " ms (cache.redis_timeout)");
      return;
    }
    arm_deadline(queue.front()->deadline);
  }

  static void on_reply(redisAsyncContext* c, void* reply, void* privdata) {
    auto* self = static_cast<impl*>(c->data);
    auto* p = static_cast<pending*>(privdata);
    for (auto it = self->queue.begin(); it != self->queue.end(); ++it) {
      if (*it == p) {
        self->queue.erase(it);
        break;
      }
    }
    if (self->destroying) {
      delete p;
      return;
    }
    redis_result r;
    if (reply == nullptr) {
      r.error = self->closing_error;
    } else {
      r.reply = convert(static_cast<redisReply*>(reply));
    }
    self->finish(p, std::move(r));
  }

  void finish(pending* p, redis_result r) {
    std::unique_ptr<pending> owned(p);
    if (!r.ok()) {
      error_counter(to_string(r.error)).inc();
    } else if (r.reply.is_error()) {
      error_counter("reply").inc();
    }
    if (owned->internal) {
      owned->cb(std::move(r));
      return;
    }
    asio::post(ioc, [cb = std::move(owned->cb), r = std::move(r)]() mutable { cb(std::move(r)); });
  }
};

redis_client::redis_client(asio::io_context& ioc, redis_client_options options)
    : impl_(std::make_shared<impl>(ioc, std::move(options))) {}

redis_client::~redis_client() {
  impl_->destroying = true;
  impl_->ph = impl::phase::idle;
  if (impl_->ac != nullptr) redisAsyncFree(impl_->ac);
  for (auto* p : impl_->queue) delete p;
  impl_->queue.clear();
  impl_->retry_timer.cancel();
  impl_->deadline_timer.cancel();
  impl_->resolver.cancel();
}

void redis_client::start() {
  if (impl_->ph != impl::phase::idle) return;
  impl_->connect();
}

void redis_client::stop() {
  auto& m = *impl_;
  m.ph = impl::phase::idle;
  ++m.retry_gen;
  m.retry_timer.cancel();
  m.resolver.cancel();
  if (m.ac != nullptr) m.close(redis_error::connection_lost, "stopped");
  m.up_gauge.set(0);
}

void redis_client::command(std::vector<std::string> args, redis_callback cb) {
  impl_->send(std::move(args), std::move(cb));
}

bool redis_client::connected() const { return impl_->ph == impl::phase::ready; }

core::entitlements::redis_link_state redis_client::state() const { return impl_->link.state(); }

void redis_client::on_state_change(std::function<void(bool up)> fn) { impl_->state_fn = std::move(fn); }

}  // namespace aforo::net
