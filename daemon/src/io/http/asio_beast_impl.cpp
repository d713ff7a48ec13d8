// The one translation unit that compiles Boost.Asio, Asio SSL and Beast (separate-compilation mode,
// see cmake/dependencies.cmake); every other file includes their headers only.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
