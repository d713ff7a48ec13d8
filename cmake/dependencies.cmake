# Every third-party dependency is found here and nowhere else.
# Debian 12 packages: libboost1.81-dev libboost-url1.81-dev libhiredis-dev liblz4-dev rapidjson-dev
# libyaml-cpp-dev catch2 libssl-dev (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(Boost 1.81.0 EXACT REQUIRED COMPONENTS url CONFIG)
find_package(OpenSSL REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(RapidJSON REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

# Header-only pieces the pure core may use (RapidJSON, Boost.CRC) without any I/O library.
add_library(aforo_deps_core INTERFACE)
target_include_directories(aforo_deps_core SYSTEM INTERFACE ${RAPIDJSON_INCLUDE_DIRS} ${Boost_INCLUDE_DIRS})
target_compile_definitions(aforo_deps_core INTERFACE RAPIDJSON_HAS_STDSTRING=1)

# Boost.Asio/Beast in separate-compilation mode: one translation unit (daemon/src/io/http/asio_beast_impl.cpp)
# holds their implementation, every other user includes headers only.
add_library(aforo_deps_net INTERFACE)
target_compile_definitions(aforo_deps_net INTERFACE BOOST_ASIO_SEPARATE_COMPILATION BOOST_BEAST_SEPARATE_COMPILATION
  BOOST_ASIO_NO_DEPRECATED BOOST_BEAST_USE_STD_STRING_VIEW)
target_link_libraries(aforo_deps_net INTERFACE Boost::headers Boost::url OpenSSL::SSL OpenSSL::Crypto Threads::Threads)

if(AFORO_BUILD_TESTS)
  find_package(Catch2 2.13 REQUIRED)
  include(Catch)
endif()
