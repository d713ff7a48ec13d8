// The request and response the router and the services see: plain structs, no Beast, so services
// and their tests compile without the networking headers.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aforo::io {

/// The server keeps one http_request per connection and parses each request into it, so the strings
/// keep their capacity from one request to the next: a handler must not hold on to it (or to views into
/// it) after calling respond.
struct http_request {
  std::string method;                                        ///< "GET", "POST", ...
  std::string target;                                        ///< path and query as received
  std::vector<std::pair<std::string, std::string>> headers;  ///< in order received, names as sent
  std::string body;

  /// The path part of target (before '?').
  [[nodiscard]] std::string_view path() const {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
  }
  /// First header with this name (case-insensitive), or empty.
  [[nodiscard]] std::string_view header(std::string_view name) const;
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  /// Sent in order after Server and Content-Type. Framing is the server's: a Content-Length,
  /// Transfer-Encoding or Connection set here is not sent, nor is a header holding a control character.
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  ///< close the connection after writing

  /// `{"error":{"code":code,"message":message}}` with this status.
  static http_response error(int status, std::string_view code, std::string_view message);
  static http_response json(int status, std::string body);
};

/// Completes a request; may be called from the handler itself or later on the server's io thread.
using respond_fn = std::function<void(http_response)>;
/// A handler gets the request (it may move the body out) and must call respond exactly once.
using handler_fn = std::function<void(http_request&, respond_fn)>;

/// JSON string escaping for bodies built by hand (core::json::append_json_string).
void append_json_string(std::string& out, std::string_view s);

}  // namespace aforo::io
