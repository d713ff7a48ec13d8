// aforo-sidecar: command line, config loading and the exit codes (0 ok, 64 usage, 78 config, 1 startup;
// `test-event`: 0 when ingest accepted the event, 1 otherwise; `replay-dead-letter`: 0 when every event
// was accepted, 1 otherwise).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "app/pipeline/replay_dead_letter.hpp"
#include "app/sidecar.hpp"
#include "app/pipeline/test_event.hpp"
#include "config/kong_migration.hpp"
#include "config/loader.hpp"
#include "config/secrets.hpp"
#include "io/safe_dir.hpp"
#include "util/log.hpp"

namespace {

constexpr int exit_usage = 64;
constexpr int exit_config = 78;
constexpr const char* default_config = "/etc/aforo/sidecar.yaml";

void usage(std::FILE* out) {
  std::fputs(
      "usage: aforo-sidecar [--config PATH] [--check-config] [--version] [--help]\n"
      "       aforo-sidecar test-event [--config PATH]\n"
      "       aforo-sidecar replay-dead-letter FILE [--sidecar-url URL] [--config PATH] [--from-line N] [--dry-run]\n"
      "       aforo-sidecar migrate-kong-config FILE [--sidecar-url URL] [--out-dir DIR] [--reveal-secrets]\n"
      "\n"
      "  test-event      send one synthetic event straight to ingest (aforo.ingest_url with its last\n"
      "                  segment /batch replaced by /test, e.g. .../v1/ingest/test) with the configured\n"
      "                  key, print ingest's status and answer; exit 0 when ingest accepted it (2xx),\n"
      "                  1 with the cause otherwise (invalid API key (401), network timeout, TLS failure,\n"
      "                  connection refused)\n"
      "  replay-dead-letter\n"
      "                  re-send the events of a dead-letter file (FILE, e.g.\n"
      "                  {spool_dir}/dead-letter/dead-letter.jsonl) to the running sidecar's\n"
      "                  POST /v1/ingest/batch (default http://127.0.0.1:8750) once the cause is fixed;\n"
      "                  prints failed events and a summary, exit 0 when every event was accepted;\n"
      "                  --dry-run only counts; `aforo-sidecar replay-dead-letter --help` for details\n"
      "\n"
      "  migrate-kong-config\n"
      "                  read a kong.yml (or Admin API JSON) running Aforo's own aforo-metering plugin\n"
      "                  (v2.2) and print the sidecar.yaml, the new plugin block and the environment\n"
      "                  lines (the API key as an empty AFORO_API_KEY= unless --reveal-secrets);\n"
      "                  --out-dir writes sidecar.yaml, kong-plugin.yml and sidecar.env (mode 0600)\n"
      "                  instead; notes on fields not carried over go to stderr; exit 0, 1 on bad input\n"
      "\n"
      "  --config PATH   YAML config (default /etc/aforo/sidecar.yaml; built-in defaults when absent)\n"
      "  --check-config  validate the config and the secrets it names, print every problem, exit 0 or 78\n"
      "  --version       print the version and exit\n"
      "\n"
      "Secrets come from the environment (AFORO_API_KEY, AFORO_TENANT_ID, AFORO_WEBHOOK_SECRET,\n"
      "AFORO_REDIS_PASSWORD) or from the files named in the config, never from the config text.\n",
      out);
}

int migrate_command(const std::vector<std::string>& args) {
  aforo::config::migration_options opts;
  std::string file, out_dir;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--sidecar-url" && i + 1 < args.size())
      opts.sidecar_url = args[++i];
    else if (a == "--out-dir" && i + 1 < args.size())
      out_dir = args[++i];
    else if (a == "--reveal-secrets")
      opts.reveal_secrets = true;
    else if (file.empty() && !a.empty() && a[0] != '-')
      file = a;
    else {
      std::fprintf(stderr, "aforo-sidecar migrate-kong-config: unknown argument '%s'\n", a.c_str());
      return exit_usage;
    }
  }
  if (file.empty()) {
    std::fputs("usage: aforo-sidecar migrate-kong-config FILE [--sidecar-url URL] [--out-dir DIR] [--reveal-secrets]\n",
               stderr);
    return exit_usage;
  }
  std::string text;
  if (std::FILE* f = std::fopen(file.c_str(), "rb")) {
    char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
  } else {
    std::fprintf(stderr, "aforo-sidecar migrate-kong-config: cannot read %s: %s\n", file.c_str(), std::strerror(errno));
    return 1;
  }
  opts.source_name = file;
  const auto r = aforo::config::migrate_kong_config(text, opts);
  for (const auto& e : r.errors) std::fprintf(stderr, "ERROR %s\n", e.c_str());
  if (!r.ok()) return 1;
  for (const auto& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  if (out_dir.empty()) {
    std::printf("# ---- sidecar.yaml ----\n%s# ---- kong.yml plugin block ----\n%s# ---- sidecar.env ----\n%s",
                r.sidecar_yaml.c_str(), r.plugin_yaml.c_str(), r.env.c_str());
    return 0;
  }
  const std::pair<const char*, const std::string*> outputs[] = {
      {"sidecar.yaml", &r.sidecar_yaml}, {"kong-plugin.yml", &r.plugin_yaml}, {"sidecar.env", &r.env}};
  for (const auto& [name, content] : outputs) {
    const std::string path = out_dir + "/" + name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, content->data(), content->size()) != static_cast<ssize_t>(content->size())) {
      std::fprintf(stderr, "aforo-sidecar migrate-kong-config: cannot write %s: %s\n", path.c_str(),
                   std::strerror(errno));
      if (fd >= 0) ::close(fd);
      return 1;
    }
    ::close(fd);
    std::printf("wrote %s\n", path.c_str());
  }
  return 0;
}

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "replay-dead-letter") == 0) {
    // Needs no secrets and only an explicit --config: its own command line.
    return aforo::app::replay_dead_letter_command(std::vector<std::string>(argv + 2, argv + argc));
  }
  if (argc >= 2 && std::strcmp(argv[1], "migrate-kong-config") == 0)
    return migrate_command(std::vector<std::string>(argv + 2, argv + argc));
  std::string config_path;
  bool explicit_config = false;
  bool check_only = false;
  bool test_event = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "test-event" && i == 1) {
      test_event = true;
    } else if (a == "--version") {
      std::printf("aforo-sidecar %s\n", AFORO_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else if (a == "--check-config") {
      check_only = true;
    } else if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
      explicit_config = true;
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
      explicit_config = true;
    } else {
      std::fprintf(stderr, "aforo-sidecar: unknown argument '%s'\n\n", a.c_str());
      usage(stderr);
      return exit_usage;
    }
  }
  if (!explicit_config && file_exists(default_config)) config_path = default_config;

  aforo::config::load_result loaded;
  if (!config_path.empty()) loaded = aforo::config::load_config_file(config_path);
  std::vector<std::string> errors = loaded.errors;
  aforo::config::secrets secrets;
  if (loaded.ok()) secrets = aforo::config::load_secrets(loaded.config, errors);

  // State directories another user could plant files in: refused (config problems for --check-config).
  std::vector<std::string> unsafe_dirs;
  if (loaded.ok() && !test_event) unsafe_dirs = aforo::io::state_dir_problems(loaded.config);
  if (check_only) errors.insert(errors.end(), unsafe_dirs.begin(), unsafe_dirs.end());

  const std::string shown = config_path.empty() ? std::string("built-in defaults") : config_path;
  const std::vector<std::string> warnings =
      loaded.ok() ? aforo::config::warnings(loaded.config) : std::vector<std::string>{};
  if (check_only) {
    for (const auto& w : warnings) std::fprintf(stderr, "%s: warning: %s\n", shown.c_str(), w.c_str());
    for (const auto& e : errors) std::fprintf(stderr, "%s: %s\n", shown.c_str(), e.c_str());
    if (!errors.empty()) {
      std::fprintf(stderr, "%s: %zu problem(s)\n", shown.c_str(), errors.size());
      return exit_config;
    }
    std::printf("%s: OK\n", shown.c_str());
    return 0;
  }
  if (!errors.empty()) {
    for (const auto& e : errors) aforo::util::log::error("config: " + shown + ": " + e);
    return exit_config;
  }
  if (test_event) {
    try {
      return aforo::app::run_test_event_command(loaded.config, secrets);
    } catch (const std::exception& e) {  // an unreadable aforo.ca_file
      std::fprintf(stderr, "ERROR %s\n", e.what());
      return 1;
    }
  }
  for (const auto& w : warnings) aforo::util::log::warn("config: " + shown + ": " + w);
  if (config_path.empty())
    aforo::util::log::info(std::string("no config file at ") + default_config + "; running on built-in defaults");

  if (!unsafe_dirs.empty()) {
    for (const auto& e : unsafe_dirs) aforo::util::log::error("cannot start: " + e);
    return 1;
  }

  // A file past RLIMIT_FSIZE must be a write error (EFBIG) that the spool and dead-letter code
  // report and survive, not a signal that kills the daemon with acknowledged events in memory.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    aforo::app::sidecar daemon(std::move(loaded.config), std::move(secrets), config_path);
    return daemon.run();
  } catch (const std::exception& e) {
    aforo::util::log::error(std::string("cannot start: ") + e.what());
    return 1;
  }
}
