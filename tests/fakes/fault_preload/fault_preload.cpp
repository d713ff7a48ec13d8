// Fault injection for tests of the real binary: LD_PRELOAD this library and set
// AFORO_FAULT_FDATASYNC_FILE=PATH; while PATH exists, fdatasync(2) fails with EIO, as it does when the
// kernel reports a write-back error. Otherwise the real call runs.
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

extern "C" int fdatasync(int fd) {
  using fn = int (*)(int);
  static fn real = reinterpret_cast<fn>(dlsym(RTLD_NEXT, "fdatasync"));
  const char* flag = std::getenv("AFORO_FAULT_FDATASYNC_FILE");
  if (flag != nullptr && ::access(flag, F_OK) == 0) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}
