// Fuzzes POST /v1/check bodies: parse_check_request (in-situ parse that rewrites the buffer).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/entitlements/check_request.hpp"
#include "fuzz_check.hpp"

namespace ce = aforo::core::entitlements;

namespace {
bool inside(std::string_view v, const std::string& buf) {
  if (v.empty()) return true;
  return v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Exactly `size` bytes on the heap, so a read past the body is caught by ASan (the server's body is
  // a std::string, whose terminating NUL RapidJSON's insitu parser may rely on).
  std::string body(reinterpret_cast<const char*>(data), size);
  ce::check_request req;
  const auto err = ce::parse_check_request(body, req);
  if (err) {
    FUZZ_CHECK(!err->empty());
    return 0;
  }
  FUZZ_CHECK(!req.customer_id.empty() && req.customer_id.size() <= 4 * ce::max_customer_id_len);
  FUZZ_CHECK(req.quantity >= 0 && req.quantity <= ce::max_quantity);
  FUZZ_CHECK(inside(req.customer_id, body) && inside(req.service, body) && inside(req.route, body));
  FUZZ_CHECK(inside(req.method, body) && inside(req.path, body) && inside(req.request_id, body));
  if (req.feature) FUZZ_CHECK(inside(*req.feature, body));
  FUZZ_CHECK(req.path.size() <= 4 * ce::max_path_len && req.method.size() <= 4 * ce::max_method_len);
  return 0;
}
