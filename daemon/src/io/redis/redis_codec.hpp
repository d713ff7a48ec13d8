// RESP encoding and parsing for the Redis client, with hiredis as the codec (redisFormatCommandArgv,
// redisReader). The one unit that includes hiredis; the client drives the connection itself.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "io/redis/redis_client.hpp"

namespace aforo::io {

/// Appends the command's RESP encoding to out; false when it cannot be encoded (out of memory).
[[nodiscard]] bool append_redis_command(std::string& out, const std::vector<std::string>& args);

/// Replies parsed from the bytes of one connection, in order.
class redis_reply_parser {
 public:
  redis_reply_parser();
  ~redis_reply_parser();
  redis_reply_parser(const redis_reply_parser&) = delete;
  redis_reply_parser& operator=(const redis_reply_parser&) = delete;

  /// False when the parser could not be created (out of memory).
  [[nodiscard]] bool usable() const { return reader_ != nullptr; }
  /// Takes the bytes read; false on a protocol error (error() says which).
  [[nodiscard]] bool feed(const char* data, std::size_t n);
  enum class step { reply, need_more, error };
  /// The next whole reply into out, need_more, or error (a protocol error: error() says which).
  [[nodiscard]] step next(redis_value& out);
  [[nodiscard]] std::string error() const;

 private:
  void* reader_;  // redisReader
};

}  // namespace aforo::io
