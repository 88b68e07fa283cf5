// fuzz_config: the main config file (server::load_config). The input is a
// config file; it is written to a scratch folder that also holds zones/
// (one zone file), a token file and a state folder, so that relative paths
// in seeds resolve. Refusing it with common::LoadError is fine; any other
// exception, a crash or a leak is not. An accepted config must be complete:
// listeners, zone files and workers.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/load_error.hpp"
#include "fuzz/fixture.hpp"
#include "server/config.hpp"

using namespace steerdns;
namespace fs = std::filesystem;

namespace {

const std::string& scratch() {
  static const std::string dir = [] {
    char name[] = "/tmp/steerdns-fuzz-config-XXXXXX";
    if (mkdtemp(name) == nullptr) std::abort();
    static std::string keep = name;
    std::atexit([] { fs::remove_all(keep); });
    fs::create_directories(keep + "/zones");
    fs::create_directories(keep + "/state");
    std::ofstream(keep + "/zones/example.com.yaml")
        << "zone: example.com\nsoa: {mname: ns1, rname: h}\nns: [ns1]\nrecords: {ns1: {A: 127.0.0.1}}\n";
    std::ofstream(keep + "/token") << "0123456789abcdef0123\n";
    std::ofstream(keep + "/short-token") << "short\n";
    return keep;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = scratch() + "/steerdns.yaml";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    const server::Config config = server::load_config(path);
    if (config.listen.empty()) fuzz::broken("a config without listeners was accepted");
    if (config.zone_files.empty()) fuzz::broken("a config without zone files was accepted");
    if (config.workers == 0) fuzz::broken("workers left at 0");
    if (config.admin.enabled && config.admin.port == 0) fuzz::broken("admin on port 0");
  } catch (const common::LoadError&) {
  }
  return 0;
}
