#include "io/redis/redis_codec.hpp"

#include <hiredis/hiredis.h>

#include <memory>

namespace aforo::io {

namespace {

redis_value convert(const redisReply* r) {
  redis_value v;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      v.type = redis_value::kind::string;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = redis_value::kind::status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = redis_value::kind::error;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = redis_value::kind::integer;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = redis_value::kind::array;
      v.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
      break;
    default:
      v.type = redis_value::kind::nil;
      break;
  }
  return v;
}

redisReader* reader_of(void* p) { return static_cast<redisReader*>(p); }

}  // namespace

bool append_redis_command(std::string& out, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* encoded = nullptr;
  const int len = redisFormatCommandArgv(&encoded, static_cast<int>(argv.size()), argv.data(), lens.data());
  if (len < 0 || encoded == nullptr) return false;
  out.append(encoded, static_cast<std::size_t>(len));
  redisFreeCommand(encoded);
  return true;
}

redis_reply_parser::redis_reply_parser() : reader_(redisReaderCreate()) {}

redis_reply_parser::~redis_reply_parser() {
  if (reader_ != nullptr) redisReaderFree(reader_of(reader_));
}

bool redis_reply_parser::feed(const char* data, std::size_t n) {
  return redisReaderFeed(reader_of(reader_), data, n) == REDIS_OK;
}

redis_reply_parser::step redis_reply_parser::next(redis_value& out) {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_of(reader_), &raw) != REDIS_OK) return step::error;
  if (raw == nullptr) return step::need_more;
  const std::unique_ptr<void, void (*)(void*)> reply(raw, &freeReplyObject);
  out = convert(static_cast<const redisReply*>(raw));
  return step::reply;
}

std::string redis_reply_parser::error() const {
  return reader_ != nullptr ? reader_of(reader_)->errstr : "out of memory";
}

}  // namespace aforo::io
