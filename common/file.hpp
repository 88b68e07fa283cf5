// Replacing a file whole: what the state file, the auto serials and other
// files steerdns writes for itself need, so that a reader (a watcher, the
// next start) never sees half a file.
#pragma once

#include <string>
#include <string_view>

namespace steerdns::common {

// Writes TEXT to PATH.tmp and renames it over PATH. Throws
// std::runtime_error naming the file and the reason when it cannot; PATH is
// then unchanged and PATH.tmp removed.
void replace_file(const std::string& path, std::string_view text);

}  // namespace steerdns::common
