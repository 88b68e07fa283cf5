#include "server/process.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "server/prometheus.hpp"

namespace steerdns::server {

namespace {

std::optional<std::string> read_text(const char* path) {
  std::ifstream file(path);
  if (!file) return std::nullopt;
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// Descriptors open now: the entries of /proc/self/fd, less the one that
// lists them.
std::optional<double> open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  double n = 0;
  while (const dirent* e = ::readdir(dir))
    if (e->d_name[0] != '.') ++n;
  ::closedir(dir);
  return n - 1;
}

bool parse_number(std::string_view text, double& out) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  out = static_cast<double>(n);
  return true;
}

}  // namespace

std::optional<ProcessStats> parse_proc_stat(std::string_view stat, double ticks_per_second, double page_size,
                                            double boot_time) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  // Fields 3 (state) onwards, split at spaces.
  std::vector<std::string_view> fields;
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty()) {
    const auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto stop = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, stop));
    rest.remove_prefix(stop == std::string_view::npos ? rest.size() : stop);
  }
  // proc(5) numbers fields from 1: utime 14, stime 15, starttime 22, vsize 23, rss 24.
  auto field = [&](std::size_t number, double& out) {
    return number - 3 < fields.size() && parse_number(fields[number - 3], out);
  };
  double utime, stime, start, vsize, rss;
  if (!field(14, utime) || !field(15, stime) || !field(22, start) || !field(23, vsize) || !field(24, rss))
    return std::nullopt;
  ProcessStats s;
  s.cpu_seconds = (utime + stime) / ticks_per_second;
  s.resident_bytes = rss * page_size;
  s.virtual_bytes = vsize;
  s.start_time = boot_time + start / ticks_per_second;
  return s;
}

std::optional<double> parse_boot_time(std::string_view proc_stat) {
  std::size_t at = 0;
  while (at < proc_stat.size()) {
    const auto end = proc_stat.find('\n', at);
    const std::string_view line = proc_stat.substr(at, end == std::string_view::npos ? end : end - at);
    double t;
    if (line.rfind("btime ", 0) == 0 && parse_number(line.substr(6), t)) return t;
    if (end == std::string_view::npos) break;
    at = end + 1;
  }
  return std::nullopt;
}

void render_process(prometheus::Text& w) {
  using prometheus::number;
  const auto stat_text = read_text("/proc/self/stat");
  const auto boot_text = read_text("/proc/stat");
  const auto boot = boot_text ? parse_boot_time(*boot_text) : std::nullopt;
  std::optional<ProcessStats> stats;
  if (stat_text && boot)
    stats = parse_proc_stat(*stat_text, static_cast<double>(::sysconf(_SC_CLK_TCK)),
                            static_cast<double>(::sysconf(_SC_PAGESIZE)), *boot);
  if (stats) {
    w.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    w.sample("process_cpu_seconds_total", {}, number(stats->cpu_seconds));
    w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    w.sample("process_resident_memory_bytes", {}, number(stats->resident_bytes));
    w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    w.sample("process_virtual_memory_bytes", {}, number(stats->virtual_bytes));
    w.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    w.sample("process_start_time_seconds", {}, number(stats->start_time));
  }
  if (const auto fds = open_fds()) {
    w.family("process_open_fds", "gauge", "Number of open file descriptors.");
    w.sample("process_open_fds", {}, number(*fds));
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    w.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    w.sample("process_max_fds", {}, number(static_cast<double>(limit.rlim_cur)));
  }
}

}  // namespace steerdns::server
