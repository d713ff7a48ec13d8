// Unit tests of the state-directory check (io/safe_dir) with real directories: modes, a symlink, another
// owner, a missing directory created 0700, and the stores refusing an unsafe one.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "config/config.hpp"
#include "io/atomic_file.hpp"
#include "io/dead_letter.hpp"
#include "io/safe_dir.hpp"
#include "io/spool/spool_store.hpp"
#include "unit_temp_dir.hpp"

using namespace aforo;
namespace fs = std::filesystem;

using aforo::unit::temp_dir;

namespace {

std::string make_dir(const std::string& path, mode_t mode) {
  REQUIRE(::mkdir(path.c_str(), 0700) == 0);
  REQUIRE(::chmod(path.c_str(), mode) == 0);  // not narrowed by the umask
  return path;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("safe_dir: a 0700 directory of our own is fine, and so is a missing one", "[safe_dir]") {
  temp_dir t;
  CHECK(io::unsafe_dir_reason(make_dir(t.sub("fine"), 0700), "buffer.spool_dir").empty());
  CHECK(io::unsafe_dir_reason(make_dir(t.sub("readable"), 0755), "buffer.spool_dir").empty());
  CHECK(io::unsafe_dir_reason(t.sub("missing"), "buffer.spool_dir").empty());
  CHECK(io::unsafe_dir_reason(t.sub("fine") + "/", "buffer.spool_dir").empty());
}

TEST_CASE("safe_dir: a directory writable by others or the group is refused, naming path and mode", "[safe_dir]") {
  temp_dir t;
  const auto open = make_dir(t.sub("open"), 0777);
  const auto why = io::unsafe_dir_reason(open, "buffer.spool_dir");
  CHECK(contains(why, open));
  CHECK(contains(why, "mode 0777"));
  CHECK(contains(why, "writable by others"));
  CHECK(contains(why, "chmod 0700 " + open));
  const auto sticky = make_dir(t.sub("sticky"), 01777);
  CHECK(contains(io::unsafe_dir_reason(sticky, "buffer.spool_dir"), "mode 01777"));
  const auto group = make_dir(t.sub("group"), 0770);
  CHECK(contains(io::unsafe_dir_reason(group, "discovery.state_dir"), "writable by its group"));
}

TEST_CASE("safe_dir: a symlinked directory is refused, also with a trailing slash", "[safe_dir]") {
  temp_dir t;
  const auto real = make_dir(t.sub("real"), 0700);
  const auto link = t.sub("link");
  REQUIRE(::symlink(real.c_str(), link.c_str()) == 0);
  const auto why = io::unsafe_dir_reason(link, "buffer.spool_dir");
  CHECK(contains(why, link + " is a symlink (to " + real + ")"));
  CHECK(contains(why, "set buffer.spool_dir to the real directory"));
  CHECK(contains(io::unsafe_dir_reason(link + "/", "buffer.spool_dir"), "is a symlink"));
  // Creating one does not go through it either.
  CHECK(contains(io::prepare_private_dir(link, "buffer.spool_dir"), "is a symlink"));
}

TEST_CASE("safe_dir: a file where a directory belongs is refused", "[safe_dir]") {
  temp_dir t;
  REQUIRE(io::write_file_atomically(t.sub("file"), "x").empty());
  CHECK(contains(io::unsafe_dir_reason(t.sub("file"), "discovery.state_dir"), "is not a directory"));
}

TEST_CASE("safe_dir: a directory owned by another uid is refused", "[safe_dir]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot chown to another uid; skipped");
    return;
  }
  temp_dir t;
  const auto theirs = make_dir(t.sub("theirs"), 0700);
  REQUIRE(::chown(theirs.c_str(), 65534, 65534) == 0);
  const auto why = io::unsafe_dir_reason(theirs, "buffer.spool_dir");
  CHECK(contains(why, theirs + " is owned by uid 65534 (mode 0700), not by uid 0"));
  CHECK(contains(why, "chown 0 " + theirs));
  // The stores refuse it too.
  io::spool_options o;
  o.dir = theirs;
  CHECK_THROWS_WITH(io::spool_store(o), Catch::Contains("owned by uid 65534"));
  CHECK_THROWS_WITH(io::dead_letter_file(theirs, 1 << 20), Catch::Contains("owned by uid 65534"));
  CHECK(contains(io::write_file_atomically(theirs + "/catalog.json", "{}", 0640, "discovery.state_dir"),
                 "owned by uid 65534"));
  CHECK_FALSE(fs::exists(theirs + "/catalog.json"));
}

TEST_CASE("safe_dir: a missing directory is created 0700, its missing parents too", "[safe_dir]") {
  temp_dir t;
  const auto dir = t.sub("a/b/spool");
  CHECK(io::prepare_private_dir(dir, "buffer.spool_dir").empty());
  CHECK(fs::is_directory(dir));
  CHECK(mode_of(dir) == 0700);
  CHECK(io::prepare_private_dir(dir, "buffer.spool_dir").empty());  // again: already there and fine
}

TEST_CASE("safe_dir: the stores create their directories 0700 and refuse unsafe ones", "[safe_dir]") {
  temp_dir t;
  {
    io::spool_options o;
    o.dir = t.sub("spool");
    io::spool_store s(o);
    CHECK(mode_of(o.dir) == 0700);
    io::dead_letter_file d(t.sub("spool/dead-letter"), 1 << 20);
    CHECK(mode_of(t.sub("spool/dead-letter")) == 0700);
  }
  CHECK(io::write_file_atomically(t.sub("state/catalog.json"), "{}", 0640, "discovery.state_dir").empty());
  CHECK(mode_of(t.sub("state")) == 0700);

  const auto open = make_dir(t.sub("open"), 0777);
  io::spool_options o;
  o.dir = open;
  CHECK_THROWS_WITH(io::spool_store(o), Catch::Contains("mode 0777"));
  CHECK_THROWS_WITH(io::dead_letter_file(open, 1 << 20), Catch::Contains("mode 0777"));
  CHECK(contains(io::write_file_atomically(open + "/entitlements.snapshot", "x", 0600, "discovery.state_dir"),
                 "mode 0777"));
  // A planted quarantine/ inside a fine spool is refused as well.
  const auto spool = make_dir(t.sub("spool2"), 0700);
  make_dir(spool + "/quarantine", 0777);
  o.dir = spool;
  CHECK_THROWS_WITH(io::spool_store(o), Catch::Contains(spool + "/quarantine"));
}

TEST_CASE("safe_dir: state_dir_problems names every unsafe directory of a config with its key", "[safe_dir]") {
  temp_dir t;
  config::sidecar_config c;
  c.buffer.spool_dir = make_dir(t.sub("spool"), 0700);
  c.discovery.state_dir = t.sub("state-missing");
  CHECK(io::state_dir_problems(c).empty());

  make_dir(t.sub("spool/dead-letter"), 0777);
  const auto real = make_dir(t.sub("real-state"), 0700);
  REQUIRE(::symlink(real.c_str(), t.sub("state").c_str()) == 0);
  c.discovery.state_dir = t.sub("state");
  const auto problems = io::state_dir_problems(c);
  REQUIRE(problems.size() == 2);
  CHECK(contains(problems[0], "buffer.dead_letter_dir: " + t.sub("spool/dead-letter") + " is writable by others"));
  CHECK(contains(problems[1], "discovery.state_dir: " + t.sub("state") + " is a symlink"));
}
