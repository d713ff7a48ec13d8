// Beast's basic_parser reading one request straight into a reused io::http_request. Only
// http_server.cpp includes this (Beast stays out of the headers the core and handlers see).
#pragma once

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/field.hpp>
#include <cstdint>
#include <string_view>

#include "io/http/http_types.hpp"

namespace aforo::io {

namespace detail {
inline std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}
}  // namespace detail

// Parses one request into the connection's http_request, overwriting the strings of the previous one
// so their capacity is reused. Beast's basic_parser does the parsing and enforces the body and header
// limits; this only stores what it reports, as Beast's own request parser would (values trimmed).
class request_parser final : public boost::beast::http::basic_parser<true> {
 public:
  explicit request_parser(http_request& req) : req_(req) { req_.body.clear(); }

  [[nodiscard]] unsigned http_version() const { return version_; }
  /// The first Expect header asked for "100-continue".
  [[nodiscard]] bool expects_continue() const { return expect_continue_; }

 private:
  void on_request_impl(boost::beast::http::verb, boost::beast::string_view method, boost::beast::string_view target,
                       int version, boost::system::error_code&) override {
    req_.method.assign(method.data(), method.size());
    req_.target.assign(target.data(), target.size());
    version_ = static_cast<unsigned>(version);
  }
  void on_response_impl(int, boost::beast::string_view, int, boost::system::error_code&) override {}
  void on_field_impl(boost::beast::http::field name, boost::beast::string_view name_sv,
                     boost::beast::string_view value_sv, boost::system::error_code&) override {
    const std::string_view name_string(name_sv.data(), name_sv.size());
    const std::string_view value = detail::trim_ows(std::string_view(value_sv.data(), value_sv.size()));
    if (fields_ < req_.headers.size()) {
      req_.headers[fields_].first.assign(name_string);
      req_.headers[fields_].second.assign(value);
    } else {
      req_.headers.emplace_back(name_string, value);
    }
    ++fields_;
    if (name == boost::beast::http::field::expect && !expect_seen_) {
      expect_seen_ = true;
      expect_continue_ = boost::beast::iequals(boost::beast::string_view(value.data(), value.size()), "100-continue");
    }
  }
  void on_header_impl(boost::system::error_code&) override {
    req_.headers.erase(req_.headers.begin() + static_cast<std::ptrdiff_t>(fields_), req_.headers.end());
  }
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, boost::system::error_code&) override {
    if (length) req_.body.reserve(static_cast<std::size_t>(*length));  // at most body_limit
  }
  std::size_t on_body_impl(boost::beast::string_view body, boost::system::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::system::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body, boost::system::error_code&) override {
    req_.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(boost::system::error_code&) override {}

  http_request& req_;
  std::size_t fields_ = 0;
  unsigned version_ = 11;
  bool expect_seen_ = false;
  bool expect_continue_ = false;
};

}  // namespace aforo::io
