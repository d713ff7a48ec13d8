// LZ4 frame codec over liblz4's lz4frame.h.
#include "io/lz4_frame.hpp"

#include <lz4frame.h>

#include <memory>

namespace aforo::io {
namespace {

lz4_result failure(const char* what, std::size_t code) {
  return {false, std::string(what) + ": " + LZ4F_getErrorName(code)};
}

struct dctx_deleter {
  void operator()(LZ4F_dctx* c) const noexcept { LZ4F_freeDecompressionContext(c); }
};

}  // namespace

lz4_result lz4_compress_frame(std::string_view in, std::string& out) {
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.contentSize = in.size();
  prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
  prefs.frameInfo.blockSizeID = LZ4F_max256KB;
  const std::size_t bound = LZ4F_compressFrameBound(in.size(), &prefs);
  out.resize(bound);
  const std::size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), &prefs);
  if (LZ4F_isError(n)) {
    out.clear();
    return failure("lz4 compress", n);
  }
  out.resize(n);
  return {true, {}};
}

lz4_result lz4_decompress_frame(std::string_view in, std::string& out, std::size_t max_out) {
  out.clear();
  LZ4F_dctx* raw = nullptr;
  if (const auto rc = LZ4F_createDecompressionContext(&raw, LZ4F_VERSION); LZ4F_isError(rc)) {
    return failure("lz4 context", rc);
  }
  std::unique_ptr<LZ4F_dctx, dctx_deleter> ctx(raw);
  if (in.empty()) return {false, "lz4 decompress: empty input"};

  const char* src = in.data();
  std::size_t left = in.size();
  std::size_t hint = 1;
  std::size_t produced = 0;
  out.resize(std::min<std::size_t>(std::max<std::size_t>(in.size() * 4, 4096), max_out));
  while (left > 0) {
    if (produced == out.size()) {
      if (out.size() >= max_out) return {false, "lz4 decompress: output over the limit"};
      out.resize(std::min(out.size() * 2, max_out));
    }
    std::size_t dst_size = out.size() - produced;
    std::size_t src_size = left;
    hint = LZ4F_decompress(ctx.get(), out.data() + produced, &dst_size, src, &src_size, nullptr);
    if (LZ4F_isError(hint)) {
      out.clear();
      return failure("lz4 decompress", hint);
    }
    produced += dst_size;
    src += src_size;
    left -= src_size;
    if (src_size == 0 && dst_size == 0 && produced < out.size()) break;  // no progress possible
  }
  // Flush whatever the context still holds for a frame that is complete.
  while (hint != 0) {
    if (produced == out.size()) {
      if (out.size() >= max_out) return {false, "lz4 decompress: output over the limit"};
      out.resize(std::min(out.size() * 2, max_out));
    }
    std::size_t dst_size = out.size() - produced;
    std::size_t src_size = 0;
    hint = LZ4F_decompress(ctx.get(), out.data() + produced, &dst_size, src, &src_size, nullptr);
    if (LZ4F_isError(hint)) {
      out.clear();
      return failure("lz4 decompress", hint);
    }
    produced += dst_size;
    if (dst_size == 0) break;
  }
  if (hint != 0) {
    out.clear();
    return {false, "lz4 decompress: truncated frame"};
  }
  out.resize(produced);
  return {true, {}};
}

}  // namespace aforo::io
