// What the Redis integration tests share: running the loop until a condition, one command and its
// reply, the snapshot two sidecars share, counting check answers, and the shared quota total.
#pragma once

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/entitlements/quota.hpp"
#include "core/entitlements/redis_keys.hpp"
#include "io/redis/redis_client.hpp"
#include "support/testkit.hpp"

namespace redis_itest {

using namespace aforo::testkit;
namespace asio = boost::asio;
namespace io = aforo::io;

/// Runs the loop until pred holds or the timeout passes.
inline bool run_until(asio::io_context& ioc, const std::function<bool()>& pred, millis timeout = 5s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    ioc.run_for(2ms);
  }
  return true;
}

inline io::redis_client_options options_for(const std::string& url, millis timeout = 250ms) {
  std::string err;
  auto ep = io::parse_redis_url(url, err);
  REQUIRE(ep);
  io::redis_client_options o;
  o.endpoint = *ep;
  o.command_timeout = timeout;
  return o;
}

inline io::redis_client_options options_for(const redis_server& r, millis timeout = 250ms) {
  return options_for(r.url(), timeout);
}

/// Sends one command and runs the loop until its reply.
inline io::redis_result call(asio::io_context& ioc, io::redis_client& c, std::vector<std::string> args) {
  std::optional<io::redis_result> out;
  c.command(std::move(args), [&](io::redis_result r) { out = std::move(r); });
  REQUIRE(run_until(
      ioc, [&] { return out.has_value(); }, 10s));
  return *out;
}

inline const char* shared_snapshot = R"(version: "7"
customers:
  cust_a:
    plan: pro
    status: active
    features:
      api: { limit: 100, period: month }
)";

/// cust_a's shared total of its `api` counter this month, read over a connection with `o`.
inline std::int64_t shared_total(const io::redis_client_options& o) {
  namespace ce = aforo::core::entitlements;
  asio::io_context ioc;
  io::redis_client client(ioc, o);
  client.start();
  REQUIRE(run_until(ioc, [&] { return client.connected(); }));
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string key;
  ce::quota_counters::make_key(key, "cust_a", "api", ce::period_of(ce::period_kind::month, now).key());
  auto r = call(ioc, client, {"HVALS", ce::redis_keys("").quota(key)});
  std::int64_t sum = 0;
  for (const auto& v : r.reply.elements) sum += std::stoll(v.str);
  return sum;
}

struct tally {
  int allowed = 0, denied = 0, errors = 0;
  std::string first_error;  ///< status and body of the first answer counted as an error
};

/// One check; counts allowed / 429 with Retry-After / anything else (an error to the caller).
inline void check_once(http_client& c, tally& t) {
  const auto r = c.post("/v1/check", R"({"customer_id":"cust_a","feature":"api","quantity":1})");
  const auto error = [&] {
    if (t.errors++ == 0) t.first_error = std::to_string(r.status) + " " + r.body + r.error;
  };
  if (r.status != 200) {
    error();
  } else if (r.body.find(R"("allowed":true)") != std::string::npos) {
    ++t.allowed;
  } else if (r.body.find(R"("status":429)") != std::string::npos &&
             r.body.find(R"("retry_after":0)") == std::string::npos) {
    ++t.denied;
  } else {
    error();
  }
}

}  // namespace redis_itest
