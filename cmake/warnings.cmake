# One interface target carries the project's warning and sanitizer flags; every target links it.
add_library(aforo_options INTERFACE)
target_compile_options(aforo_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)
if(AFORO_WERROR)
  target_compile_options(aforo_options INTERFACE -Werror)
endif()
if(AFORO_SANITIZE)
  target_compile_options(aforo_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  target_link_options(aforo_options INTERFACE -fsanitize=address,undefined)
endif()
