#include "common/file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace steerdns::common {

void replace_file(const std::string& path, std::string_view text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream file(temporary, std::ios::trunc);
    file << text;
    file.flush();
    if (!file) {
      const int err = errno;
      std::remove(temporary.c_str());
      throw std::runtime_error(temporary + ": cannot write: " + std::strerror(err));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(temporary.c_str());
    throw std::runtime_error(path + ": cannot replace: " + std::strerror(err));
  }
}

}  // namespace steerdns::common
