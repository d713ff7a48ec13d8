// The one guard for callbacks that may outlive their owner (timer waits, HTTP and Redis completions,
// work posted back from a thread): the owner holds a lifetime, each callback captures a handle and
// does nothing once the handle has expired.
#pragma once

#include <memory>

namespace aforo::util {

/// Held by an object as a member (`util::lifetime alive_;`); callbacks capture `alive_.watch()`
/// next to `this` and return at once when `expired()`. The handles expire when the owner calls
/// end() (stop) or is destroyed. Neither copyable nor movable: handles stand for one object.
/// Thread-safe: a handle may be checked on any thread while the owner ends it on another, but the
/// check only says the owner had not ended yet; a callback that uses the owner runs on the owner's
/// thread (post work back to the owner's io_context before checking).
class lifetime {
 public:
  /// What a callback captures.
  class handle {
   public:
    handle() = default;  ///< expired
    /// The owner ended (or was destroyed, or this handle was never bound).
    [[nodiscard]] bool expired() const noexcept { return token_.expired(); }

   private:
    friend class lifetime;
    explicit handle(std::weak_ptr<const char> token) : token_(std::move(token)) {}
    std::weak_ptr<const char> token_;
  };

  lifetime() = default;
  lifetime(const lifetime&) = delete;
  lifetime& operator=(const lifetime&) = delete;
  ~lifetime() = default;

  /// A handle that expires when this lifetime ends.
  [[nodiscard]] handle watch() const { return handle(token_); }
  /// Expires every handle now (idempotent): completions still queued do nothing.
  void end() noexcept { token_.reset(); }
  [[nodiscard]] bool ended() const noexcept { return token_ == nullptr; }

 private:
  std::shared_ptr<const char> token_ = std::make_shared<const char>('\0');
};

}  // namespace aforo::util
