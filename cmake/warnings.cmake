# One interface target carries the project's warning and sanitizer flags; every target links it.
add_library(aforo_options INTERFACE)
target_compile_options(aforo_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)
if(AFORO_WERROR)
  target_compile_options(aforo_options INTERFACE -Werror)
endif()
# -fno-sanitize=vptr: UBSan's vptr check tests whether a vtable is readable by writing it into a pipe;
# the tests that exhaust a process's file descriptors (prlimit, setrlimit) make that pipe fail, and every
# virtual call then reports a false "invalid vptr" (seen on std::error_category). Everything else stays.
if(AFORO_SANITIZE)
  target_compile_options(aforo_options INTERFACE -fsanitize=address,undefined -fno-sanitize=vptr -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  target_link_options(aforo_options INTERFACE -fsanitize=address,undefined)
endif()
