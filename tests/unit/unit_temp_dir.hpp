// A temporary directory for unit tests that touch real files, removed with everything in it.
#pragma once

#include <catch2/catch.hpp>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace aforo::unit {

class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "aforo-unit-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// The path of `name` inside the directory.
  [[nodiscard]] std::string sub(const std::string& name) const { return path + "/" + name; }
  [[nodiscard]] std::filesystem::path dir() const { return path; }

  std::string path;
};

}  // namespace aforo::unit
