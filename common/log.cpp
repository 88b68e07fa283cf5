#include "common/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>

namespace steerdns::common {

namespace {

// The fields of the event() being logged on this thread, for the JSON
// formatter (the logger is synchronous: it formats on the calling thread).
thread_local const std::initializer_list<LogField>* t_fields = nullptr;

// systemd sets JOURNAL_STREAM to "DEVICE:INODE" of the journal's stream;
// stderr is that stream when they match (not when stderr was redirected).
bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr || *stream == '\0') return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug: return 7;
    case spdlog::level::info: return 6;
    case spdlog::level::warn: return 4;
    case spdlog::level::err: return 3;
    default: return 2;
  }
}

void append(spdlog::memory_buf_t& out, std::string_view text) {
  out.append(text.data(), text.data() + text.size());
}

void append_json_string(spdlog::memory_buf_t& out, std::string_view text) {
  out.push_back('"');
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      append(out, "\\n");
    } else if (c == '\t') {
      append(out, "\\t");
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      append(out, buf);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

// 2026-12-02T08:10:11.123+00:00
void append_time(spdlog::memory_buf_t& out, spdlog::log_clock::time_point when) {
  const auto since = when.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since - seconds).count();
  const std::time_t t = static_cast<std::time_t>(seconds.count());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+00:00", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(millis));
  append(out, buf);
}

class Formatter final : public spdlog::formatter {
 public:
  Formatter(LogFormat format, bool priorities) : format_(format), priorities_(priorities) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& out) override {
    if (priorities_) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<%d>", syslog_priority(msg.level));
      append(out, buf);
    }
    const auto level = spdlog::level::to_string_view(msg.level);
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (format_ == LogFormat::text) {
      append_time(out, msg.time);
      out.push_back(' ');
      append(out, std::string_view(level.data(), level.size()));
      out.push_back(' ');
      append(out, payload);
    } else {
      append(out, "{\"time\":\"");
      append_time(out, msg.time);
      append(out, "\",\"level\":");
      append_json_string(out, std::string_view(level.data(), level.size()));
      append(out, ",\"message\":");
      append_json_string(out, payload);
      if (t_fields != nullptr) {
        for (const LogField& field : *t_fields) {
          if (field.value.empty()) continue;
          out.push_back(',');
          append_json_string(out, field.key);
          out.push_back(':');
          append_json_string(out, field.value);
        }
      }
      out.push_back('}');
    }
    out.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<Formatter>(format_, priorities_);
  }

 private:
  LogFormat format_;
  bool priorities_;
};

std::atomic<LogFormat> g_format{LogFormat::text};

}  // namespace

bool parse_log_format(std::string_view name, LogFormat& format) {
  if (name == "text") format = LogFormat::text;
  else if (name == "json") format = LogFormat::json;
  else return false;
  return true;
}

void setup_logging(LogFormat format, spdlog::level::level_enum level) {
  auto logger = spdlog::get("steerdns");
  if (!logger) {
    logger = spdlog::stderr_logger_mt("steerdns");
    spdlog::set_default_logger(logger);
  }
  g_format.store(format, std::memory_order_relaxed);
  logger->set_formatter(std::make_unique<Formatter>(format, stderr_is_journal()));
  spdlog::set_level(level);
  spdlog::flush_on(spdlog::level::info);
}

void event(spdlog::level::level_enum level, std::string_view message,
           std::initializer_list<LogField> fields) {
  if (!spdlog::should_log(level)) return;
  if (g_format.load(std::memory_order_relaxed) == LogFormat::json) {
    t_fields = &fields;
    spdlog::log(level, "{}", message);
    t_fields = nullptr;
    return;
  }
  std::string text(message);
  for (const LogField& field : fields) {
    if (field.value.empty()) continue;
    text += ' ';
    text += field.key;
    text += '=';
    const bool quote = field.value.find_first_of(" \t\"=") != std::string::npos;
    if (!quote) {
      text += field.value;
      continue;
    }
    text += '"';
    for (const char c : field.value) {
      if (c == '"' || c == '\\') text += '\\';
      text += c;
    }
    text += '"';
  }
  spdlog::log(level, "{}", text);
}

}  // namespace steerdns::common
