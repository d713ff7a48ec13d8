// The dead-letter replay tool; see replay_dead_letter.hpp. The file is streamed line by line (never
// loaded whole), the requests are posted one at a time with the project's HTTP client.
#include "app/pipeline/replay_dead_letter.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "config/loader.hpp"
#include "config/secrets.hpp"
#include "core/pipeline/dead_letter_replay.hpp"
#include "io/http/http_client.hpp"
#include "io/http/listen_address.hpp"

namespace aforo::app {
namespace {

constexpr int exit_usage = 64;
constexpr int exit_config = 78;
constexpr std::size_t max_line_bytes = 64u << 20;  // a longer line is reported and skipped
constexpr std::size_t max_shown_body = 4096;

/// Reads a file line by line through a fixed buffer (memory is bounded by the longest line), up to
/// `limit` bytes: the size when the replay started. The running sidecar appends to its dead-letter file
/// (events refused again while the cause is not fixed): those lines are left for a later run, so a
/// replay never chases its own refusals.
class line_reader {
 public:
  line_reader(std::FILE* f, std::uint64_t limit) : f_(f), buf_(1u << 20), remaining_(limit) {}

  /// The next line without its '\n' (a last line without one too); false at the end of the file.
  /// `too_long`: the line was over max_line_bytes; `line` is then empty.
  bool next(std::string& line, bool& too_long) {
    line.clear();
    too_long = false;
    bool any = false;
    for (;;) {
      if (pos_ == len_) {
        if (eof_) return any;
        len_ = remaining_ == 0 ? 0 : std::fread(buf_.data(), 1, std::min<std::uint64_t>(buf_.size(), remaining_), f_);
        remaining_ -= len_;
        pos_ = 0;
        if (len_ == 0) {
          eof_ = true;
          return any;
        }
      }
      any = true;
      const char* start = buf_.data() + pos_;
      const auto* nl = static_cast<const char*>(std::memchr(start, '\n', len_ - pos_));
      const std::size_t n = nl != nullptr ? static_cast<std::size_t>(nl - start) : len_ - pos_;
      if (!too_long && line.size() + n > max_line_bytes) {
        too_long = true;
        std::string().swap(line);
      }
      if (!too_long) line.append(start, n);
      pos_ += n;
      if (nl != nullptr) {
        ++pos_;
        return true;
      }
    }
  }
  [[nodiscard]] bool failed() const { return std::ferror(f_) != 0; }

 private:
  std::FILE* f_;
  std::vector<char> buf_;
  std::size_t pos_ = 0;
  std::size_t len_ = 0;
  std::uint64_t remaining_;
  bool eof_ = false;
};

void out(const std::string& s) {
  std::fputs(s.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void err(const std::string& s) {
  std::fflush(stdout);
  std::fputs(s.c_str(), stderr);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

std::string shown(std::string_view body) {
  std::string s(body.substr(0, max_shown_body));
  if (body.size() > max_shown_body) s += "...";
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

/// Runs one request to completion on the private io_context.
io::client_result exchange(boost::asio::io_context& ioc, io::http_client& client, io::client_request req) {
  std::optional<io::client_result> result;
  client.async_request(std::move(req), [&result](io::client_result r) { result = std::move(r); });
  ioc.restart();
  while (!result && ioc.run_one() != 0) {
  }
  if (!result) {
    io::client_result r;
    r.error = io::client_result::error_kind::aborted;
    r.error_message = "the request did not complete";
    return r;
  }
  return std::move(*result);
}

struct totals {
  std::uint64_t lines = 0;     // lines read (from --from-line on)
  std::uint64_t skipped = 0;   // malformed, undecodable or over-long lines
  std::uint64_t events = 0;    // events found in replayable lines
  std::uint64_t requests = 0;  // requests answered 202
  std::uint64_t posted = 0;    // events in those requests
  std::uint64_t accepted = 0;
  std::uint64_t failed = 0;
};

/// Posts the requests one at a time, retrying a busy sidecar (503 + Retry-After) and a lost answer.
class poster {
 public:
  poster(const replay_options& o, totals& t)
      : opts_(o), url_(replay_post_url(o.sidecar_url)), t_(t), client_(ioc_, client_opts()) {}

  /// True when the sidecar answered 202 (per-event failures are counted and printed); false after
  /// printing why the replay stops.
  bool post(const core::replay_request& r) {
    for (unsigned attempt = 1;; ++attempt) {
      io::client_request req;
      req.method = "POST";
      req.url = url_;
      req.headers.emplace_back("Content-Type", "application/json");
      if (!opts_.token.empty()) req.headers.emplace_back("Authorization", "Bearer " + opts_.token);
      req.body = r.body;
      const auto res = exchange(ioc_, client_, std::move(req));
      const bool last = attempt >= opts_.max_tries;
      if (!res.ok()) {
        using kind = io::client_result::error_kind;
        if (res.error == kind::connect_refused) {
          return stop(r, "no sidecar at " + opts_.sidecar_url +
                             " (connection refused); is aforo-sidecar running, and is "
                             "that its listen address?");
        }
        if ((res.error == kind::timeout || res.error == kind::closed) && !last) {
          err("WARN no answer from the sidecar at " + opts_.sidecar_url + " (" + res.error_message +
              "); sending the same request again in 1 s (try " + std::to_string(attempt + 1) + " of " +
              std::to_string(opts_.max_tries) + ")");
          std::this_thread::sleep_for(std::chrono::seconds(1));
          continue;
        }
        return stop(r, "cannot reach the sidecar at " + opts_.sidecar_url + ": " + res.error_message);
      }
      if (res.status == 503) {
        if (last) {
          return stop(r,
                      "the sidecar still answered 503 after " + std::to_string(attempt) + " tries: " + shown(res.body));
        }
        const unsigned wait = core::retry_after_seconds(res.header("Retry-After"));
        err("WARN the sidecar is busy (503: " + shown(res.body) + "); retrying in " + std::to_string(wait) +
            " s (try " + std::to_string(attempt + 1) + " of " + std::to_string(opts_.max_tries) + ")");
        std::this_thread::sleep_for(std::chrono::seconds(wait));
        continue;
      }
      if (res.status != 202) {
        return stop(r, "the sidecar refused a request of " + std::to_string(r.events()) + " events with " +
                           std::to_string(res.status) + ": " + shown(res.body));
      }
      const auto ack = core::parse_replay_ack(res.body);
      if (!ack) return stop(r, "the sidecar answered 202 with an unexpected body: " + shown(res.body));
      ++t_.requests;
      t_.posted += r.events();
      t_.accepted += ack->accepted;
      t_.failed += ack->failed;
      for (const auto& e : ack->errors) {
        if (e.index < r.origins.size()) {
          const auto& o = r.origins[e.index];
          err("FAILED line " + std::to_string(o.line) + " event " + std::to_string(o.index) + " (idempotencyKey " +
              (o.key.empty() ? std::string("none") : "\"" + o.key + "\"") + "): " + e.message);
        } else {
          err("FAILED event " + std::to_string(e.index) + " of a request starting at line " +
              std::to_string(r.first_line) + ": " + e.message);
        }
      }
      return true;
    }
  }

 private:
  static io::client_options client_opts() {
    io::client_options o;
    o.connect_timeout = std::chrono::seconds(5);
    o.request_timeout = std::chrono::seconds(30);  // the sidecar answers after its spool write is synced
    o.user_agent = std::string("aforo-sidecar-replay/") + AFORO_VERSION;
    return o;
  }
  bool stop(const core::replay_request& r, const std::string& why) {
    err("ERROR " + why);
    const std::string line = std::to_string(r.first_line);
    err("ERROR stopped; " +
        (r.first_line <= opts_.from_line
             ? std::string("no event was handed to the sidecar")
             : "the events of the lines before line " + line + " were handed to the sidecar") +
        ": after fixing the cause, resume with --from-line " + line);
    return false;
  }

  const replay_options& opts_;
  std::string url_;
  totals& t_;
  boost::asio::io_context ioc_;
  io::http_client client_;
};

bool parse_count(const std::string& s, std::uint64_t& v) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && ec == std::errc{} && end == s.data() + s.size();
}

int usage_error(const std::string& why) {
  std::fprintf(stderr, "aforo-sidecar replay-dead-letter: %s\n\n%s", why.c_str(), replay_usage());
  return exit_usage;
}

}  // namespace

const char* replay_usage() {
  return "usage: aforo-sidecar replay-dead-letter FILE [--sidecar-url URL] [--config PATH] [--from-line N] [--dry-run]\n"
         "\n"
         "Re-sends the events of a dead-letter file ({spool_dir}/dead-letter/dead-letter.jsonl, or a rotated\n"
         ".1 .. .3) to the running local sidecar's POST /v1/ingest/batch, in requests of at most 1000 events,\n"
         "once the cause of the refusal is fixed. The sidecar delivers them as usual; every event keeps its\n"
         "idempotencyKey, so events Aforo already has are not counted twice. No API key is needed; a sidecar\n"
         "with a local API token gets it from env AFORO_SIDECAR_TOKEN or the --config's server.auth_token_file.\n"
         "\n"
         "  --sidecar-url URL  the sidecar to post to (default http://127.0.0.1:8750)\n"
         "  --config PATH      take the URL from the first TCP `listen` address of this config, the\n"
         "                     request bounds from server.max_batch_events and server.max_body, and the\n"
         "                     local API token from server.auth_token_file\n"
         "  --from-line N      start at line N (1-based), as printed when a replay stopped\n"
         "  --dry-run          only read the file: print each unusable line and the counts, post nothing\n"
         "\n"
         "Lines that are not dead-letter lines, or hold an undecodable spool record, are reported with their\n"
         "number and skipped. A busy sidecar (503) is retried after its Retry-After; a request it refuses\n"
         "(400, 413) or no sidecar at the URL stops the replay with the line to resume from. Only the lines\n"
         "present at the start are read: lines the sidecar appends meanwhile are left for a later run.\n"
         "Exit status: 0 when every event was accepted (or, with --dry-run, every line can be replayed);\n"
         "1 when events failed, lines were skipped or the replay stopped; 64 bad command line; 78 invalid config.\n";
}

std::string replay_post_url(std::string base) {
  while (!base.empty() && base.back() == '/') base.pop_back();
  constexpr std::string_view path = "/v1/ingest/batch";
  if (base.size() >= path.size() && base.compare(base.size() - path.size(), path.size(), path) == 0) return base;
  return base + std::string(path);
}

std::string sidecar_url_from_listen(const std::vector<std::string>& listen) {
  for (const auto& a : listen) {
    const auto addr = io::parse_listen_address(a);
    if (!addr.unix_path.empty()) continue;
    std::string host;
    if (addr.ip.is_v6())
      host = "[" + (addr.ip.is_unspecified() ? std::string("::1") : addr.ip.to_string()) + "]";
    else
      host = addr.ip.is_unspecified() ? std::string("127.0.0.1") : addr.ip.to_string();
    return "http://" + host + ":" + std::to_string(addr.port);
  }
  return {};
}

int run_replay(const replay_options& opts) {
  std::FILE* f = std::fopen(opts.file.c_str(), "rb");
  if (f == nullptr) {
    err("ERROR cannot open " + opts.file + ": " + std::strerror(errno));
    return 1;
  }
  struct closer {
    std::FILE* f;
    ~closer() { std::fclose(f); }
  } close_f{f};
  struct stat st {};
  if (::fstat(::fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    err("ERROR " + opts.file + " is not a regular file");
    return 1;
  }

  totals t;
  std::optional<poster> post;
  if (!opts.dry_run) {
    post.emplace(opts, t);
    out("replaying " + opts.file + " to " + replay_post_url(opts.sidecar_url));
  }
  core::replay_batcher batcher(opts.max_events, opts.max_bytes);
  std::uint64_t dry_requests = 0;
  bool stopped = false;
  const auto send = [&](const core::replay_request& r) {
    if (!post) {
      ++dry_requests;
      return true;
    }
    return post->post(r);
  };

  line_reader lines(f, static_cast<std::uint64_t>(st.st_size));
  std::string line;
  bool too_long = false;
  std::uint64_t line_no = 0;
  while (!stopped && lines.next(line, too_long)) {
    ++line_no;
    if (line_no < opts.from_line) continue;
    ++t.lines;
    if (too_long) {
      err("WARN line " + std::to_string(line_no) + ": skipped: longer than " + std::to_string(max_line_bytes >> 20) +
          " MiB");
      ++t.skipped;
      continue;
    }
    const auto parsed = core::parse_dead_letter_line(line);
    using kind = core::dead_letter_line::kind;
    if (parsed.what == kind::blank) continue;
    if (parsed.what != kind::events) {
      err("WARN line " + std::to_string(line_no) + ": skipped: " + parsed.problem);
      ++t.skipped;
      continue;
    }
    t.events += parsed.events.size();
    for (const auto& r : batcher.add(line_no, parsed)) {
      if (!send(r)) {
        stopped = true;
        break;
      }
    }
  }
  if (!stopped && lines.failed()) {
    err("ERROR reading " + opts.file + " failed after line " + std::to_string(line_no));
    stopped = true;
  }
  if (!stopped) {
    if (const auto r = batcher.finish(); r && !send(*r)) stopped = true;
  }

  if (opts.dry_run) {
    out("dry run: " + std::to_string(t.lines) + " lines read, " + std::to_string(t.events) + " events to post in " +
        std::to_string(dry_requests) + " request(s), " + std::to_string(t.skipped) + " lines skipped");
    return !stopped && t.skipped == 0 ? 0 : 1;
  }
  out("replay " + std::string(stopped ? "stopped" : "done") + ": " + std::to_string(t.lines) + " lines read, " +
      std::to_string(t.posted) + " events posted, " + std::to_string(t.accepted) + " accepted, " +
      std::to_string(t.failed) + " failed, " + std::to_string(t.skipped) + " lines skipped");
  const bool all = !stopped && t.skipped == 0 && t.failed == 0 && t.accepted == t.events;
  return all ? 0 : 1;
}

int replay_dead_letter_command(const std::vector<std::string>& args) {
  replay_options opts;
  std::string config_path;
  bool url_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--help" || a == "-h") {
      std::fputs(replay_usage(), stdout);
      return 0;
    } else if (a == "--dry-run") {
      opts.dry_run = true;
    } else if (a == "--sidecar-url" && has_value) {
      opts.sidecar_url = args[++i];
      url_given = true;
    } else if (a.rfind("--sidecar-url=", 0) == 0) {
      opts.sidecar_url = a.substr(14);
      url_given = true;
    } else if (a == "--config" && has_value) {
      config_path = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--from-line" && has_value) {
      if (!parse_count(args[++i], opts.from_line) || opts.from_line == 0)
        return usage_error("--from-line takes a line number (1 or more)");
    } else if (!a.empty() && a[0] != '-' && opts.file.empty()) {
      opts.file = a;
    } else {
      return usage_error("unknown argument '" + a + "'");
    }
  }
  if (opts.file.empty()) return usage_error("the dead-letter FILE is missing");
  if (opts.sidecar_url.rfind("unix:", 0) == 0) {
    return usage_error(
        "unix socket URLs are not supported: give a TCP listen address of the sidecar, e.g. "
        "http://127.0.0.1:8750");
  }
  if (opts.sidecar_url.rfind("http://", 0) != 0 && opts.sidecar_url.rfind("https://", 0) != 0)
    return usage_error("--sidecar-url must be an http:// URL, e.g. http://127.0.0.1:8750");
  if (const char* t = std::getenv("AFORO_SIDECAR_TOKEN"); t != nullptr && *t != '\0') {
    config::sidecar_config defaults;
    std::vector<std::string> errors;
    opts.token = config::load_api_token(defaults, errors);
    for (const auto& e : errors) std::fprintf(stderr, "AFORO_SIDECAR_TOKEN: %s\n", e.c_str());
    if (!errors.empty()) return exit_config;
  }
  if (!config_path.empty()) {
    const auto loaded = config::load_config_file(config_path);
    if (!loaded.ok()) {
      for (const auto& e : loaded.errors) std::fprintf(stderr, "%s: %s\n", config_path.c_str(), e.c_str());
      return exit_config;
    }
    if (opts.token.empty()) {
      std::vector<std::string> errors;
      opts.token = config::load_api_token(loaded.config, errors);
      for (const auto& e : errors) std::fprintf(stderr, "%s: %s\n", config_path.c_str(), e.c_str());
      if (!errors.empty()) return exit_config;
    }
    opts.max_events = std::min<std::size_t>(opts.max_events, loaded.config.server.max_batch_events);
    opts.max_bytes = static_cast<std::size_t>(loaded.config.server.max_body);
    if (!url_given) {
      std::string url;
      try {
        url = sidecar_url_from_listen(loaded.config.listen);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", config_path.c_str(), e.what());
        return exit_config;
      }
      if (url.empty()) {
        return usage_error(config_path + " listens on unix sockets only; give --sidecar-url with a TCP address");
      }
      opts.sidecar_url = url;
    }
  }
  try {
    return run_replay(opts);
  } catch (const std::exception& e) {
    err(std::string("ERROR ") + e.what());
    return 1;
  }
}

}  // namespace aforo::app
