// The Beast response the sidecar's server sends for a handler's http_response. Only http_server.cpp
// (and its tests) include this; handlers and the core see http_types.hpp, which stays Beast-free.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>

#include "io/http/http_types.hpp"

namespace aforo::io {

using beast_response = boost::beast::http::response<boost::beast::http::string_body>;

/// Fills `res` (reused: its previous fields are cleared) from `r` for a request of HTTP version
/// `version` (10 or 11, as Beast counts it): status, `Server`, `Content-Type`, r.headers in order, the
/// body (moved out of r), keep-alive as asked and `Content-Length`, ready for Beast's serializer.
/// A header in r.headers whose name or value holds a control character is skipped, and so is one naming
/// a framing header the server owns (Content-Length, Transfer-Encoding, Connection). A 1xx, 204 or 304
/// response carries no body. Returns how many headers were skipped for control characters.
std::size_t prepare_response(beast_response& res, http_response&& r, unsigned version, bool keep_alive);

}  // namespace aforo::io
