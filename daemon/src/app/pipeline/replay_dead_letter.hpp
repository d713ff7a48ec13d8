// `aforo-sidecar replay-dead-letter FILE`: re-sends the events of a dead-letter file to the running local
// sidecar's POST /v1/ingest/batch once the cause of the refusal is fixed; the sidecar then takes custody
// and delivers them as usual (Aforo deduplicates by idempotencyKey, so re-sending is safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace aforo::app {

struct replay_options {
  std::string file;
  std::string sidecar_url =
      "http://127.0.0.1:8750";  ///< the sidecar's base URL (a full .../v1/ingest/batch URL is kept)
  bool dry_run = false;
  std::uint64_t from_line = 1;       ///< lines before this one are not read into requests
  std::size_t max_events = 1000;     ///< events per request (the sidecar's server.max_batch_events)
  std::size_t max_bytes = 4u << 20;  ///< request body bound (the sidecar's server.max_body)
  std::string token;                 ///< local API token sent as Authorization: Bearer (never printed)
  unsigned max_tries = 60;           ///< tries of one request answered 503 (or timed out) before giving up
};

/// The URL requests are posted to: `base` plus `/v1/ingest/batch` (unless it already ends with it).
[[nodiscard]] std::string replay_post_url(std::string base);

/// The sidecar's base URL from its first TCP `listen` address ("0.0.0.0:8750" -> "http://127.0.0.1:8750",
/// "[::]:9000" -> "http://[::1]:9000"); empty when every address is a unix socket. Throws
/// std::runtime_error for an address that does not parse.
[[nodiscard]] std::string sidecar_url_from_listen(const std::vector<std::string>& listen);

/// Reads the file and posts its events (or, with dry_run, only counts them); prints problems per line,
/// failed events and a summary. Returns 0 when every event was accepted and no line was skipped, 1
/// otherwise (including a sidecar that cannot be reached or refuses a request).
int run_replay(const replay_options& opts);

/// `aforo-sidecar replay-dead-letter ARGS...` (the arguments after the subcommand): parses them, reads
/// --config when given, runs. Exit codes: those of run_replay, 64 for a bad command line, 78 for an
/// invalid config.
int replay_dead_letter_command(const std::vector<std::string>& args);

/// The subcommand's --help text.
[[nodiscard]] const char* replay_usage();

}  // namespace aforo::app
