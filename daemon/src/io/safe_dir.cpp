// Safe state directories; see safe_dir.hpp.
#include "io/safe_dir.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "io/dead_letter.hpp"

namespace aforo::io {

namespace fs = std::filesystem;

namespace {

std::string octal_mode(mode_t m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%03o", static_cast<unsigned>(m & 07777));
  return buf;
}

// Without trailing slashes: lstat("link/") would follow the symlink.
std::string strip_slashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace

std::string unsafe_dir_reason(const std::string& given, std::string_view key) {
  const std::string path = strip_slashes(given);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return path + " cannot be inspected: " + std::strerror(errno);
  }
  const std::string k(key);
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    const auto target = fs::read_symlink(path, ec);
    return path + " is a symlink" + (ec ? std::string() : " (to " + target.string() + ")") +
           "; the sidecar does not follow symlinks for its state: set " + k + " to the real directory";
  }
  if (!S_ISDIR(st.st_mode)) return path + " is not a directory; set " + k + " to a directory";
  const uid_t me = ::geteuid();
  if (st.st_uid != me) {
    return path + " is owned by uid " + std::to_string(st.st_uid) + " (mode " + octal_mode(st.st_mode) +
           "), not by uid " + std::to_string(me) +
           " that runs the sidecar, so another user could plant or redirect files there: remove it (the "
           "sidecar creates it with mode 0700), or `chown " +
           std::to_string(me) + " " + path + " && chmod 0700 " + path + "`, or set " + k +
           " to a directory of the sidecar's own";
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return path + " is writable by " + ((st.st_mode & S_IWOTH) != 0 ? "others" : "its group") + " (owner uid " +
           std::to_string(st.st_uid) + ", mode " + octal_mode(st.st_mode) +
           "), so another user could plant files there: `chmod 0700 " + path + "` (or at least go-w)";
  }
  return {};
}

std::string prepare_private_dir(const std::string& given, std::string_view key) {
  const std::string path = strip_slashes(given);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    const fs::path p(path);
    std::error_code ec;
    if (p.has_parent_path() && p.has_filename()) fs::create_directories(p.parent_path(), ec);
    if (ec) return "cannot create " + p.parent_path().string() + ": " + ec.message();
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
      return "cannot create " + path + ": " + std::strerror(errno);
    }
  }
  return unsafe_dir_reason(path, key);
}

std::vector<std::string> state_dir_problems(const config::sidecar_config& c) {
  const std::string spool = c.buffer.spool_dir;
  const std::string dead_letter = dead_letter_file::default_dir(spool, c.buffer.dead_letter_dir);
  const std::pair<std::string, std::string> dirs[] = {
      {"buffer.spool_dir", spool},
      {"buffer.spool_dir", (fs::path(spool) / "quarantine").string()},
      {"buffer.dead_letter_dir", dead_letter},
      {"discovery.state_dir", c.discovery.state_dir},
  };
  std::vector<std::string> out;
  std::vector<std::string> seen;
  for (const auto& [key, dir] : dirs) {
    if (dir.empty()) continue;
    const std::string normal = fs::path(dir).lexically_normal().string();
    bool dup = false;
    for (const auto& s : seen) dup = dup || s == normal;
    if (dup) continue;
    seen.push_back(normal);
    if (auto why = unsafe_dir_reason(dir, key); !why.empty()) out.push_back(key + ": " + why);
  }
  return out;
}

}  // namespace aforo::io
