// Ingest requests for the usage pipeline; see pipeline_sender.hpp.
#include "app/pipeline/pipeline_sender.hpp"

#include "io/clients/aforo_client.hpp"
#include <charconv>

#include "io/process/ingest_thread.hpp"
#include "config/units.hpp"
#include "io/lz4_frame.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include "util/clock.hpp"
#include "util/log.hpp"

namespace aforo::app {
namespace {

constexpr std::size_t max_kept_response = 4096;

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(std::string_view v) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  std::uint32_t s = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
  if (v.empty() || ec != std::errc{} || p != v.data() + v.size()) return std::nullopt;
  return std::chrono::seconds(std::min<std::uint32_t>(s, 24 * 3600));
}

pipeline_sender::pipeline_sender(boost::asio::io_context& ioc, const config::sidecar_config& cfg,
                                 const config::secrets& sec, pipeline_metrics& metrics)
    : ioc_(ioc),
      client_options_(io::aforo_client_options(cfg)),
      probe_client_(ioc, client_options_),
      metrics_(metrics),
      url_(cfg.aforo.ingest_url),
      auth_headers_(io::aforo_auth_headers(cfg, sec)),
      codec_(cfg.batch.codec),
      fallback_(cfg.batch.compression_retry) {
  publish_compression();
}

void pipeline_sender::set_compression(config::compression c, std::chrono::milliseconds retry_interval) {
  codec_ = c;
  fallback_.set_retry_interval(retry_interval);
  publish_compression();
}

const char* pipeline_sender::configured_compression() const noexcept {
  return codec_ == config::compression::lz4 ? "lz4" : "none";
}

const char* pipeline_sender::effective_compression() const noexcept {
  return codec_ == config::compression::lz4 && fallback_.in_use() ? "lz4" : "none";
}

void pipeline_sender::publish_compression() {
  const bool lz4 = codec_ == config::compression::lz4 && fallback_.in_use();
  metrics_.compression_lz4.set(lz4 ? 1 : 0);
  metrics_.compression_none.set(lz4 ? 0 : 1);
}

bool pipeline_sender::judge_encoding(const io::client_result& r) {
  using change = core::encoding_fallback::change;
  const auto now = util::steady_now();
  if (!r.ok()) {
    fallback_.inconclusive(now);
    return false;
  }
  const bool refused = core::is_encoding_refusal(r.status, r.body);
  // Read past the encoding: delivered, or refused for its events or size. 401/403, 408, 429 and 5xx
  // say nothing about it.
  const bool decoded = (r.status >= 200 && r.status < 300) || r.status == 400 || r.status == 413 || r.status == 422;
  if (!refused && !decoded) {
    fallback_.inconclusive(now);
    return false;
  }
  const auto c = refused ? fallback_.refused(now) : fallback_.accepted();
  const std::string again = config::format_duration(fallback_.retry_interval()) + " (batch.compression_retry)";
  if (c == change::fell_back) {
    util::log::warn("ingest " + r.host + " refused Content-Encoding: lz4 (" + std::to_string(r.status) +
                    "); sending batches uncompressed, trying lz4 again every " + again);
  } else if (c == change::still_refused) {
    util::log::info("ingest still refuses lz4 (" + std::to_string(r.status) + "); uncompressed for another " + again);
  } else if (c == change::restored) {
    util::log::info("ingest " + r.host + " accepts lz4 again; compressing batches");
  }
  if (c != change::none) publish_compression();
  return refused;
}

void pipeline_sender::probe_compression() {
  if (codec_ != config::compression::lz4 || shut_) return;
  std::string wire;
  if (!io::lz4_compress_frame(R"({"events":[]})", wire).ok) return;
  io::client_request req;
  req.method = "POST";
  req.url = url_;
  req.headers = auth_headers_;
  req.headers.emplace_back("Content-Type", "application/json");
  req.headers.emplace_back("Content-Encoding", "lz4");
  req.body = std::move(wire);
  probe_client_.async_request(std::move(req), [this](io::client_result r) {
    if (r.error == io::client_result::error_kind::aborted) return;  // stopping: the sender may be gone
    judge_encoding(r);  // only what it says about the encoding: the key check reports the rest
  });
}

void pipeline_sender::probe(std::string body, io::http_client::completion done) {
  io::client_request req;
  req.method = "POST";
  req.url = url_;
  req.headers = auth_headers_;
  req.headers.emplace_back("Content-Type", "application/json");
  req.body = std::move(body);
  probe_client_.async_request(std::move(req), std::move(done));
}

std::size_t pipeline_sender::reserve() {
  for (std::size_t i = 0; i < busy_.size(); ++i) {
    if (!busy_[i]) {
      busy_[i] = true;
      return i;
    }
  }
  clients_.push_back(std::make_unique<io::http_client>(ioc_, client_options_));
  busy_.push_back(true);
  return clients_.size() - 1;
}

void pipeline_sender::shutdown() {
  shut_ = true;
  for (auto& c : clients_) c->shutdown();
  probe_client_.shutdown();
}

std::uint64_t pipeline_sender::connections_opened() const {
  std::uint64_t n = 0;
  for (const auto& c : clients_) n += c->connections_opened();
  return n;
}

void pipeline_sender::send(const std::string& body, std::function<void(send_report)> done) {
  metrics_.raw_bytes.inc(body.size());
  const std::size_t slot = reserve();
  if (codec_ != config::compression::lz4 || !fallback_.use_lz4(util::steady_now())) {
    post(slot, body, false, std::move(done));
    return;
  }
  if (thread_ == nullptr || thread_->behind()) {
    if (thread_ != nullptr) metrics_.io_thread_work.inc();
    if (auto r = io::lz4_compress_frame(body, wire_); r.ok) {
      std::string wire = std::move(wire_);
      wire_ = std::string();
      post(slot, std::move(wire), true, std::move(done));
    } else {
      util::log::warn("lz4 compression failed (" + r.error + "); sending the batch uncompressed");
      post(slot, body, false, std::move(done));
    }
    return;
  }
  // The thread works on its own copy: the caller's body may go (SIGTERM) before the thread is done.
  thread_->post([this, slot, raw = std::make_shared<std::string>(body), done = std::move(done)]() mutable {
    auto wire = std::make_shared<std::string>();
    const auto r = io::lz4_compress_frame(*raw, *wire);
    boost::asio::post(ioc_, [this, slot, raw, wire, ok = r.ok, error = r.error, done = std::move(done)]() mutable {
      if (ok) {
        post(slot, std::move(*wire), true, std::move(done));
        return;
      }
      util::log::warn("lz4 compression failed (" + error + "); sending the batch uncompressed");
      post(slot, std::move(*raw), false, std::move(done));
    });
  });
}

void pipeline_sender::post(std::size_t slot, std::string body, bool compressed, std::function<void(send_report)> done) {
  if (shut_) {
    busy_[slot] = false;
    // Stopped while the batch was being compressed: nothing is sent; the caller keeps the batch.
    send_report rep;
    rep.outcome = core::delivery_outcome::network();
    rep.error = io::client_result::error_kind::aborted;
    rep.error_message = "the sidecar is stopping";
    done(std::move(rep));
    return;
  }
  io::client_request req;
  req.method = "POST";
  req.url = url_;
  req.headers = auth_headers_;
  req.headers.emplace_back("Content-Type", "application/json");
  if (compressed) req.headers.emplace_back("Content-Encoding", "lz4");
  req.body = std::move(body);
  metrics_.wire_bytes.inc(req.body.size());
  clients_[slot]->async_request(std::move(req), [this, slot, compressed, done = std::move(done)](io::client_result r) {
    busy_[slot] = false;
    send_report rep;
    rep.host = r.host;
    rep.error = r.error;
    rep.compressed = compressed;
    if (compressed && r.error != io::client_result::error_kind::aborted && judge_encoding(r)) {
      rep.encoding_refused = true;
      metrics_.encoding_refused.inc();
    }
    if (r.ok()) {
      std::optional<std::chrono::seconds> retry_after;
      if (auto h = r.header("Retry-After"); !h.empty()) retry_after = parse_retry_after(h);
      rep.outcome = core::delivery_outcome::http(r.status, retry_after);
      if (r.status >= 200 && r.status < 300)
        rep.ack = core::parse_ingest_ack(r.body, 1000);  // every error of a full batch
      rep.response_body = r.body.size() > max_kept_response ? r.body.substr(0, max_kept_response) : std::move(r.body);
      metrics_.ingest_request(std::to_string(r.status)).inc();
    } else if (r.error == io::client_result::error_kind::timeout ||
               r.error == io::client_result::error_kind::connect_timeout) {
      rep.outcome = core::delivery_outcome::timed_out();
      rep.error_message = r.error_message;
      metrics_.ingest_request("timeout").inc();
    } else {
      rep.outcome = core::delivery_outcome::network();
      rep.error_message = r.error_message.empty() ? std::string(io::to_string(r.error)) : r.error_message;
      if (r.error != io::client_result::error_kind::aborted) metrics_.ingest_request("network_error").inc();
    }
    done(std::move(rep));
  });
}

}  // namespace aforo::app
