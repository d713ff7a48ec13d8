// Unit tests of the file-change watcher (io/file_watch) with real files: a missing file, a rewrite of
// another size, the same size with a new modification time, a file renamed over the path (new inode,
// same size and time), a symlink swapped to another file, and whole-file reads.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "io/file_watch.hpp"
#include "unit_temp_dir.hpp"

using namespace aforo;
namespace fs = std::filesystem;

using aforo::unit::temp_dir;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

// Sets the file's modification time to `sec` seconds after the epoch (and its access time alike).
void set_mtime(const std::string& path, time_t sec) {
  const timespec times[2] = {{sec, 0}, {sec, 0}};
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

}  // namespace

TEST_CASE("file watch: a missing file has no version, and errno says why", "[file_watch]") {
  temp_dir d;
  int err = 0;
  CHECK_FALSE(io::stamp_file(d.sub("absent.yaml"), &err).has_value());
  CHECK(err == ENOENT);

  io::file_watch w(d.sub("absent.yaml"));
  const auto now = w.current();
  CHECK_FALSE(now.has_value());
  CHECK_FALSE(w.differs(now));  // missing, and nothing read: no change to act on
}

TEST_CASE("file watch: an unchanged file does not differ from the version read", "[file_watch]") {
  temp_dir d;
  const auto path = d.sub("guards.yaml");
  write(path, "guards: []\n");
  io::file_watch w(path);
  const auto first = w.current();
  REQUIRE(first.has_value());
  CHECK(w.differs(first));  // never read yet
  w.mark_read(first);
  CHECK_FALSE(w.differs(w.current()));
  CHECK(w.seen() == first);
}

TEST_CASE("file watch: another size or another modification time is a new version", "[file_watch]") {
  temp_dir d;
  const auto path = d.sub("snapshot.yaml");
  write(path, "version: a\n");
  set_mtime(path, 1'700'000'000);
  io::file_watch w(path);
  w.mark_read(w.current());

  SECTION("rewritten with another size, same modification time") {
    write(path, "version: ab\n");
    set_mtime(path, 1'700'000'000);
    CHECK(w.differs(w.current()));
  }
  SECTION("same size, a new modification time") {
    write(path, "version: b\n");
    set_mtime(path, 1'700'000'001);
    CHECK(w.differs(w.current()));
  }
}

TEST_CASE("file watch: a file renamed over the path is a new version even with the same size and time",
          "[file_watch]") {
  temp_dir d;
  const auto path = d.sub("snapshot.yaml");
  write(path, "version: a\n");
  set_mtime(path, 1'700'000'000);
  io::file_watch w(path);
  w.mark_read(w.current());

  const auto next = d.sub("snapshot.yaml.new");
  write(next, "version: b\n");
  set_mtime(next, 1'700'000'000);
  REQUIRE(::rename(next.c_str(), path.c_str()) == 0);
  const auto now = w.current();
  REQUIRE(now.has_value());
  CHECK(now->size == w.seen()->size);
  CHECK(now->mtime_ns == w.seen()->mtime_ns);
  CHECK(w.differs(now));
}

TEST_CASE("file watch: a symlink is followed, so swapping its target is a new version", "[file_watch]") {
  temp_dir d;
  write(d.sub("v1.yaml"), "version: a\n");
  write(d.sub("v2.yaml"), "version: bb\n");
  const auto link = d.sub("current.yaml");
  fs::create_symlink(d.sub("v1.yaml"), link);
  io::file_watch w(link);
  w.mark_read(w.current());
  CHECK_FALSE(w.differs(w.current()));

  // The way a Kubernetes ConfigMap update lands: a new link renamed over the old one.
  fs::create_symlink(d.sub("v2.yaml"), d.sub("current.yaml.tmp"));
  fs::rename(d.sub("current.yaml.tmp"), link);
  CHECK(w.differs(w.current()));
  CHECK(io::read_whole_file(link) == std::optional<std::string>("version: bb\n"));
}

TEST_CASE("file watch: a file gone after being read differs once, then not again once forgotten", "[file_watch]") {
  temp_dir d;
  const auto path = d.sub("guards.yaml");
  write(path, "guards: []\n");
  io::file_watch w(path);
  w.mark_read(w.current());
  REQUIRE(::unlink(path.c_str()) == 0);
  const auto now = w.current();
  CHECK(w.differs(now));
  w.forget();
  CHECK_FALSE(w.differs(w.current()));

  write(path, "guards: []\n");  // back: differs from nothing read
  CHECK(w.differs(w.current()));

  w.watch(d.sub("other.yaml"));  // another path: nothing of it read
  CHECK_FALSE(w.seen().has_value());
}

TEST_CASE("file watch: read_whole_file reads every byte, and nothing from a missing file", "[file_watch]") {
  temp_dir d;
  const auto path = d.sub("bytes.bin");
  const std::string bytes("a\0b\r\n\xff", 6);
  write(path, bytes);
  CHECK(io::read_whole_file(path) == std::optional<std::string>(bytes));
  write(path, "");
  CHECK(io::read_whole_file(path) == std::optional<std::string>(""));
  CHECK_FALSE(io::read_whole_file(d.sub("absent")).has_value());
}
