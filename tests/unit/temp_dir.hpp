// Shared by every unit test binary: temporary files. Module-free on purpose
// (standard library only); what needs server/ is in server/fixture.hpp.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace steerdns::test {

// A directory that lives as long as the object.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/steerdns-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace steerdns::test
