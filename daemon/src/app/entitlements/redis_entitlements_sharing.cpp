// The Redis edge cache: snapshot publish, read-through customer lookups and quota sharing.
#include "app/entitlements/redis_entitlements_sharing.hpp"

#include <openssl/sha.h>

#include <boost/asio/io_context.hpp>
#include <random>
#include <stdexcept>

#include "core/entitlements/redis_customer_entry.hpp"
#include "core/margin/level_notice.hpp"
#include "util/clock.hpp"
#include "util/log.hpp"
#include "util/metrics.hpp"

namespace aforo::app {

namespace ce = core::entitlements;

namespace {

constexpr std::size_t publish_chunk_size = 500;  // customers per HSET
constexpr const char* publish_lock_ms = "30000";
constexpr const char* old_version_ttl_s = "3600";

// KEYS[1] = ent:version; ARGV[1] = hash prefix, ARGV[2] = customer id -> nil | {version, json|nil}
constexpr std::string_view read_script = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('HGET', ARGV[1] .. v, ARGV[2])}
)lua";

// KEYS[1] = ent:version, KEYS[2] = ent:lock; ARGV = new version, hash prefix, old ttl, instance.
constexpr std::string_view flip_script = R"lua(
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PERSIST', ARGV[2] .. ARGV[1])
if old and old ~= ARGV[1] then redis.call('EXPIRE', ARGV[2] .. old, ARGV[3]) end
if redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('DEL', KEYS[2]) end
return 1
)lua";

// KEYS[1] = lock, ARGV[1] = instance: deletes the lock only if this sidecar holds it.
constexpr std::string_view release_script = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

std::string random_instance() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> dist;
  const std::uint64_t v = dist(rd);
  static constexpr char hex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 0; i < 16; ++i) s[static_cast<std::size_t>(i)] = hex[(v >> (4 * (15 - i))) & 0xF];
  return s;
}

// The endpoint of cache.redis with the credentials from outside the file: cache.redis_username (else
// the URL's user) and the password from AFORO_REDIS_PASSWORD / cache.redis_password_file (else the
// URL's, which --check-config warns about).
io::redis_client_options client_options(const config::sidecar_config& c, const config::secrets& s) {
  std::string error;
  auto ep = io::parse_redis_url(c.cache.redis, error);
  if (!ep) throw std::runtime_error("cache.redis: " + error);
  if (!c.cache.redis_username.empty()) ep->user = c.cache.redis_username;
  if (!s.redis_password.empty()) ep->password = s.redis_password;
  io::redis_client_options o;
  o.endpoint = std::move(*ep);
  o.tls_ca_file = c.cache.redis_ca_file;
  o.tls_server_name = c.cache.redis_tls_server_name;
  o.command_timeout = c.cache.redis_timeout;
  o.connect_timeout = std::max<std::chrono::milliseconds>(c.cache.redis_timeout, std::chrono::seconds(1));
  return o;
}

util::counter_metric& lookups(const char* result) {
  return util::metrics().counter("aforo_sidecar_redis_lookups_total",
                                 "Customer fetches from the Redis edge cache, by result (found, absent, error)",
                                 std::string("result=\"") + result + "\"");
}

util::counter_metric& sync_pushes(const std::string& set_label, const char* result) {
  return util::metrics().counter("aforo_sidecar_redis_sync_pushes_total",
                                 "Shared counter pushes to Redis (one script call per batch of keys), by counter set "
                                 "and result (failed: sent again at a later sync)",
                                 "counters=\"" + util::escape_label(set_label) + "\",result=\"" + result + "\"");
}

util::counter_metric& reservation_calls(const char* result) {
  return util::metrics().counter("aforo_sidecar_quota_reservation_calls_total",
                                 "Quota reservation script calls to Redis, by result (granted: all asked for or a "
                                 "report, short: less than asked, the limit is near; failed: no answer)",
                                 std::string("result=\"") + result + "\"");
}

std::string sha1_hex(std::string_view text) {
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : md) {
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 0xF]);
  }
  return out;
}

}  // namespace

/// One shared counter set and its push bookkeeping.
struct redis_entitlements_sharing::counter_set {
  counter_set(shared_counters c, std::int64_t follow_s)
      : set(std::move(c.set)),
        label(std::move(c.label)),
        counters(c.counters),
        take_reads(std::move(c.take_reads)),
        ok(sync_pushes(label, "ok")),
        failed(sync_pushes(label, "failed")) {
    sync.follow_for(follow_s);
  }

  std::string set;
  std::string label;
  ce::quota_counters* counters;  // quota: the counters of the latest sync_quota call
  std::function<std::vector<ce::counter_read>()> take_reads;
  ce::quota_sync sync;
  std::size_t batches_in_flight = 0;
  util::counter_metric& ok;
  util::counter_metric& failed;
};

redis_entitlements_sharing::redis_entitlements_sharing(context& ctx)
    : ctx_(ctx),
      keys_(ctx.secrets.tenant_id),
      instance_(random_instance()),
      client_(ctx.ioc, client_options(ctx.config, ctx.secrets)),
      lru_(static_cast<std::size_t>(ctx.config.cache.lru_capacity)),
      reserve_(ctx.config.cache.quota == config::quota_mode::reserve),
      reserve_sha_(sha1_hex(ce::quota_reserve_script())) {
  sets_.push_back(std::make_unique<counter_set>(
      shared_counters{std::string(ce::redis_keys::quota_set), "quota", nullptr, {}, 0}, 0));
  client_.on_state_change([this](bool up) {
    if (!up) return;
    // Redis may have restarted empty: put every known contribution back, changed or not.
    std::string resent;
    for (auto& s : sets_) {
      if (const auto n = s->sync.resend_all(); n > 0) {
        resent += (resent.empty() ? "" : ", ") + std::to_string(n) + " " + s->label;
      }
    }
    if (!resent.empty()) {
      util::log::info("redis: connected, sending every known counter contribution again (" + resent + ")");
    }
    try_publish();
  });
  client_.start();
}

void redis_entitlements_sharing::share_counters(shared_counters set) {
  if (set.counters == nullptr) return;
  if (set.set == ce::redis_keys::quota_set) throw std::invalid_argument("shared counters: the quota key set is taken");
  const auto follow_s = set.follow_s;
  sets_.push_back(std::make_unique<counter_set>(std::move(set), follow_s));
}

redis_entitlements_sharing::~redis_entitlements_sharing() = default;

std::string_view redis_entitlements_sharing::state() const { return client_.connected() ? "connected" : "unavailable"; }

// ---- read-through ----------------------------------------------------------------------------

void redis_entitlements_sharing::lookup_customer(std::string_view customer_id, lookup_done done) {
  auto r = lru_.lookup(customer_id, clock::now(), ctx_.config.entitlements.refresh_interval);
  if (r) {
    const customer_ptr c = *r.value;
    if (r.state == ce::cache_state::stale) fetch(std::string(customer_id));
    done(c, c ? r.state : ce::cache_state::miss);
    return;
  }
  fetch(std::string(customer_id));
  done(nullptr, ce::cache_state::miss);
}

void redis_entitlements_sharing::fetch(const std::string& id) {
  if (!client_.connected() || !fetching_.insert(id).second) return;
  client_.command({"EVAL", std::string(read_script), "1", keys_.snapshot_version(), keys_.snapshot_hash_prefix(), id},
                  [this, id](io::redis_result r) {
                    fetching_.erase(id);
                    if (!r.ok_reply()) {
                      lookups("error").inc();
                      return;
                    }
                    if (r.reply.is_nil()) return;  // nothing published yet: remember nothing
                    customer_ptr found;
                    if (r.reply.elements.size() == 2 && r.reply.elements[1].type == io::redis_value::kind::string) {
                      if (auto e = ce::parse_customer_entry(r.reply.elements[1].str)) {
                        found = std::make_shared<const ce::customer>(std::move(e->value));
                      }
                    }
                    lookups(found ? "found" : "absent").inc();
                    lru_.put(id, std::move(found), clock::now());
                  });
}

// ---- snapshot publish ------------------------------------------------------------------------

void redis_entitlements_sharing::snapshot_loaded(const snapshot_ptr& snap) {
  to_publish_ = snap;
  try_publish();
}

void redis_entitlements_sharing::try_publish() {
  if (!to_publish_ || publishing_ || !client_.connected()) return;
  publishing_ = true;
  snapshot_ptr snap = to_publish_;
  client_.command({"SET", keys_.publish_lock(), instance_, "NX", "PX", publish_lock_ms},
                  [this, snap](io::redis_result r) {
                    if (!r.ok_reply()) return publish_done(snap, false, "");
                    if (r.reply.is_nil()) {  // another sidecar is publishing: try again next tick
                      publishing_ = false;
                      return;
                    }
                    client_.command({"GET", keys_.snapshot_version()}, [this, snap](io::redis_result v) {
                      if (!v.ok_reply()) return publish_done(snap, false, "");
                      if (v.reply.type == io::redis_value::kind::string && v.reply.str == snap->version) {
                        client_.command({"EVAL", std::string(release_script), "1", keys_.publish_lock(), instance_},
                                        [](io::redis_result) {});
                        return publish_done(snap, false, "already there");
                      }
                      auto ids = std::make_shared<std::vector<std::string>>();
                      ids->reserve(snap->customers.size());
                      for (const auto& [id, c] : snap->customers) ids->push_back(id);
                      client_.command({"DEL", keys_.snapshot_hash(snap->version)}, [](io::redis_result) {});
                      publish_chunk(snap, std::move(ids), 0);
                    });
                  });
}

void redis_entitlements_sharing::publish_chunk(snapshot_ptr snap, std::shared_ptr<std::vector<std::string>> ids,
                                               std::size_t from) {
  if (from >= ids->size()) return publish_flip(snap);
  std::vector<std::string> args{"HSET", keys_.snapshot_hash(snap->version)};
  const std::size_t to = std::min(ids->size(), from + publish_chunk_size);
  for (std::size_t i = from; i < to; ++i) {
    const auto* c = snap->find_customer((*ids)[i]);
    args.push_back((*ids)[i]);
    args.push_back(ce::customer_entry_json(*c, snap->version));
  }
  client_.command(std::move(args), [this, snap, ids, to](io::redis_result r) {
    if (!r.ok_reply()) return publish_done(snap, false, "");
    publish_chunk(snap, ids, to);
  });
}

void redis_entitlements_sharing::publish_flip(const snapshot_ptr& snap) {
  client_.command({"EVAL", std::string(flip_script), "2", keys_.snapshot_version(), keys_.publish_lock(), snap->version,
                   keys_.snapshot_hash_prefix(), old_version_ttl_s, instance_},
                  [this, snap](io::redis_result r) { publish_done(snap, r.ok_reply(), ""); });
}

void redis_entitlements_sharing::publish_done(const snapshot_ptr& snap, bool published, const std::string& why) {
  publishing_ = false;
  if (published) {
    util::log::info("entitlements: published snapshot " + snap->version + " to redis (" +
                    std::to_string(snap->customers.size()) + " customers)");
  }
  // Done with this version when written or found there; on a failure it is tried again next tick.
  if ((published || !why.empty()) && to_publish_ == snap) to_publish_.reset();
}

// ---- quota sharing ---------------------------------------------------------------------------

void redis_entitlements_sharing::sync_quota(ce::quota_counters& counters) {
  const auto now = util::unix_now();
  if (now - last_expire_ >= 60) {
    for (auto& s : sets_) s->sync.expire(now);
    last_expire_ = now;
  }
  if (to_publish_ && !publishing_) try_publish();
  sets_.front()->counters = &counters;
  for (auto& s : sets_) sync_set(*s, now);
}

void redis_entitlements_sharing::sync_set(counter_set& s, std::int64_t now) {
  // Reads are noted even while Redis is down, so those keys are followed once it returns.
  if (s.take_reads) {
    for (const auto& r : s.take_reads()) s.sync.follow(r.key, r.period_end, now);
  }
  if (!client_.connected() || s.batches_in_flight > 0) return;
  for (auto& batch : s.sync.collect(*s.counters, now)) {
    auto pushes = std::make_shared<std::vector<ce::quota_push>>(std::move(batch));
    std::vector<std::string> args{"EVAL", std::string(ce::quota_sync_script())};
    for (auto& a : ce::quota_sync::script_args(*pushes, keys_, instance_, s.set)) args.push_back(std::move(a));
    ++s.batches_in_flight;
    client_.command(std::move(args), [&s, pushes, counters = s.counters](io::redis_result r) {
      --s.batches_in_flight;
      std::vector<std::int64_t> totals;
      bool ok = r.ok_reply() && r.reply.type == io::redis_value::kind::array;
      if (ok) {
        for (const auto& e : r.reply.elements) {
          ok = ok && e.type == io::redis_value::kind::integer;
          totals.push_back(e.integer);
        }
      }
      if (!ok || !s.sync.applied(*pushes, totals, *counters)) {
        if (r.ok() && r.reply.is_error()) util::log::warn("redis: " + s.label + " push refused: " + r.reply.str);
        s.sync.failed(*pushes);
        s.failed.inc();
        return;
      }
      s.ok.inc();
    });
  }
}

// ---- quota reservations ----------------------------------------------------------------------

void redis_entitlements_sharing::reserve(std::vector<ce::reserve_call> calls, reserve_done done) {
  static util::counter_metric& granted = reservation_calls("granted");
  static util::counter_metric& short_ = reservation_calls("short");
  static util::counter_metric& failed = reservation_calls("failed");
  const auto ttl = std::to_string(ctx_.config.cache.quota_chunk_ttl.count());
  auto shared_done = std::make_shared<reserve_done>(std::move(done));
  for (auto& c : calls) {
    auto call = std::make_shared<ce::reserve_call>(std::move(c));
    std::vector<std::string> args{"EVALSHA",
                                  reserve_sha_,
                                  "1",
                                  keys_.counter(ce::redis_keys::reservation_set, call->key),
                                  instance_,
                                  std::to_string(call->consumed),
                                  std::to_string(call->held),
                                  std::to_string(call->want),
                                  std::to_string(call->limit),
                                  ttl,
                                  std::to_string(call->expire_at),
                                  std::to_string(call->bound),
                                  std::to_string(call->others)};
    auto on_reply = std::make_shared<std::function<void(io::redis_result)>>();
    *on_reply = [this, call, shared_done, args, on_reply_weak = std::weak_ptr(on_reply)](io::redis_result r) mutable {
      if (r.ok() && r.reply.is_error() && r.reply.str.rfind("NOSCRIPT", 0) == 0 && args[0] == "EVALSHA") {
        args[0] = "EVAL";  // not cached (Redis restarted): send the text once
        args[1] = std::string(ce::quota_reserve_script());
        if (auto self = on_reply_weak.lock())
          client_.command(args, [self](io::redis_result rr) { (*self)(std::move(rr)); });
        return;
      }
      const bool ok = r.ok_reply() && r.reply.type == io::redis_value::kind::array && r.reply.elements.size() == 3 &&
                      r.reply.elements[0].type == io::redis_value::kind::integer &&
                      r.reply.elements[1].type == io::redis_value::kind::integer &&
                      r.reply.elements[2].type == io::redis_value::kind::integer;
      if (!ok) {
        if (r.ok() && r.reply.is_error()) util::log::warn("redis: quota reservation refused: " + r.reply.str);
        failed.inc();
        return (*shared_done)(*call, std::nullopt);
      }
      ce::reserve_reply reply{r.reply.elements[0].integer, r.reply.elements[1].integer, r.reply.elements[2].integer};
      (reply.granted < call->want ? short_ : granted).inc();
      (*shared_done)(*call, reply);
    };
    client_.command(std::move(args), [on_reply](io::redis_result r) { (*on_reply)(std::move(r)); });
  }
}

// ---- margin guard notices --------------------------------------------------------------------

void redis_entitlements_sharing::claim_level_notice(const core::margin::level_change& change,
                                                    std::function<void(notice_claim)> done) {
  std::vector<std::string> args{"EVAL", std::string(core::margin::notice_claim_script())};
  for (auto& a : core::margin::notice_claim_args(change, keys_, instance_, util::unix_now()))
    args.push_back(std::move(a));
  // Not connected fails at once (from the loop, not from inside command()): sent anyway.
  client_.command(std::move(args), [done = std::move(done)](io::redis_result r) {
    if (!r.ok_reply() || r.reply.type != io::redis_value::kind::integer) {
      if (r.ok() && r.reply.is_error()) util::log::warn("redis: margin notice claim refused: " + r.reply.str);
      return done(notice_claim::unavailable);
    }
    done(r.reply.integer == 1 ? notice_claim::claimed : notice_claim::claimed_elsewhere);
  });
}

}  // namespace aforo::app
