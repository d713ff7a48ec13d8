// Dead-letter file writer: JSON lines built with RapidJSON, appended with one write(2).
#include "io/dead_letter.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace aforo::io {
namespace {
namespace rj = rapidjson;
constexpr std::size_t max_response_bytes = 4096;

std::error_code write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return {errno, std::generic_category()};
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}
}  // namespace

std::string dead_letter_file::default_dir(std::string_view spool_dir, std::string_view dead_letter_dir) {
  if (!dead_letter_dir.empty()) return std::string(dead_letter_dir);
  return (std::filesystem::path(spool_dir) / "dead-letter").string();
}

dead_letter_file::dead_letter_file(std::string dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("dead-letter directory " + dir + " cannot be created: " + ec.message());
  path_ = (std::filesystem::path(dir) / "dead-letter.jsonl").string();
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) throw std::runtime_error("dead-letter file " + path_ + " cannot be opened: " + std::strerror(errno));
}

dead_letter_file::~dead_letter_file() {
  if (fd_ >= 0) ::close(fd_);
}

std::error_code dead_letter_file::append(std::string_view batch_body, std::uint32_t event_count, int status,
                                         std::string_view timestamp, std::string_view response_body) {
  rj::StringBuffer buf;
  rj::Writer<rj::StringBuffer> w(buf);
  w.StartObject();
  w.Key("time");
  w.String(timestamp.data(), static_cast<rj::SizeType>(timestamp.size()));
  w.Key("status");
  w.Int(status);
  w.Key("events");
  w.Uint(event_count);
  w.Key("response");
  const auto resp = response_body.substr(0, max_response_bytes);
  w.String(resp.data(), static_cast<rj::SizeType>(resp.size()));
  w.Key("batch");
  rj::Document check;
  check.Parse(batch_body.data(), batch_body.size());
  if (!check.HasParseError()) {
    check.Accept(w);  // compact, so the line stays one line
  } else {
    w.String(batch_body.data(), static_cast<rj::SizeType>(batch_body.size()));
  }
  w.EndObject();
  std::string line(buf.GetString(), buf.GetSize());
  line.push_back('\n');
  return write_all(fd_, line);
}

std::error_code dead_letter_file::sync() {
  if (::fdatasync(fd_) != 0) return {errno, std::generic_category()};
  return {};
}

}  // namespace aforo::io
