// A main() for the fuzz targets without libFuzzer (any compiler, the normal
// build): runs LLVMFuzzerTestOneInput once on every file of the directories
// (or files) given, in name order, so the seed corpora run as a CTest test.
// Arguments that start with '-' (libFuzzer's options) are ignored. Fails
// when it found no input at all: an empty corpus is a broken test.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

char current[4096];  // the input being run, named when it crashes

void on_crash(int sig) {
  const char head[] = "replay: crashed on ";
  [[maybe_unused]] auto n = write(2, head, sizeof head - 1);
  n = write(2, current, std::strlen(current));
  n = write(2, "\n", 1);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] == '-') continue;
    const fs::path p = argv[i];
    if (fs::is_directory(p)) {
      for (const auto& entry : fs::directory_iterator(p))
        if (entry.is_regular_file()) files.push_back(entry.path());
    } else if (fs::is_regular_file(p)) {
      files.push_back(p);
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "replay: no inputs\n");
    return 1;
  }
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, on_crash);
  const auto start = std::chrono::steady_clock::now();
  for (const auto& file : files) {
    std::snprintf(current, sizeof current, "%s", file.c_str());
    std::ifstream in(file, std::ios::binary);
    // Exactly the input's size on the heap, as libFuzzer passes it, so
    // that ASan (when on) sees any read past its end.
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    auto data = std::make_unique<std::uint8_t[]>(text.size());
    std::memcpy(data.get(), text.data(), text.size());
    LLVMFuzzerTestOneInput(data.get(), text.size());
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::printf("replayed %zu inputs in %lld ms\n", files.size(), static_cast<long long>(ms));
  return 0;
}
