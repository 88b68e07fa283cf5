// The process's own figures, exported as the standard process_* metrics of
// the Prometheus clients (process_cpu_seconds_total, ...). Read at scrape
// time from /proc/self and getrlimit, never on the packet path.
#pragma once

#include <optional>
#include <string_view>

namespace steerdns::server {

namespace prometheus {
class Text;  // server/prometheus.hpp
}

struct ProcessStats {
  double cpu_seconds = 0;     // user and system time
  double resident_bytes = 0;  // resident set size
  double virtual_bytes = 0;   // virtual memory size
  double start_time = 0;      // seconds since the epoch
};

// Parses the text of /proc/PID/stat (proc(5): the command, in parentheses,
// may hold spaces and parentheses; the fields follow the last ')'), given
// the clock ticks per second, the page size and the boot time (seconds
// since the epoch, /proc/stat's btime). nullopt when the text is not one.
std::optional<ProcessStats> parse_proc_stat(std::string_view stat, double ticks_per_second, double page_size,
                                            double boot_time);

// /proc/stat's btime: when the machine booted, in seconds since the epoch.
std::optional<double> parse_boot_time(std::string_view proc_stat);

// The process_* families: what cannot be read (no /proc) is left out.
void render_process(prometheus::Text& out);

}  // namespace steerdns::server
