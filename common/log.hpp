// Log lines for people and for machines. Every module logs through spdlog;
// lines about one thing an operator watches (a zone, a geo name, a region, a
// VIP, a check) go through event(), which carries those things as fields:
//
//   text:  2026-12-02T08:10:11.123+00:00 warning health: region paris down
//          name=artifacts.example.com region=paris up=1 threshold=2
//   json:  {"time":"2026-12-02T08:10:11.123+00:00","level":"warning",
//           "message":"health: region paris down","name":"artifacts.example.com",
//           "region":"paris","up":"1","threshold":"2"}
//
// Field keys are stable (they are the words of the config and the metrics'
// labels): zone, name (a geo name), region, vip, check, reason, and a few
// more per event, all in snake_case. Values are text.
//
// Timestamps are UTC with their offset. Under systemd (stderr connected to the
// journal: JOURNAL_STREAM names it), each line starts with its syslog
// priority (<3> error, <4> warning, <6> info, <7> debug) so that
// `journalctl -p warning` filters.
//
// Thread contract: setup() at start, before any thread logs; event() from any
// thread (the logger is synchronous; fields reach the formatter on the
// calling thread).
#pragma once

#include <spdlog/spdlog.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace steerdns::common {

enum class LogFormat { text, json };

// Installs the default logger ("steerdns", on stderr) with FORMAT and LEVEL
// ("debug", "info", "warning", "error"). Called again (after the config is
// read), it changes the format and level of the same logger.
void setup_logging(LogFormat format, spdlog::level::level_enum level);

// "text" / "json"; false when NAME is neither.
bool parse_log_format(std::string_view name, LogFormat& format);

struct LogField {
  std::string_view key;
  std::string value;
};

// One line: MESSAGE, then its fields (text: ` key=value`, values with spaces
// quoted; json: one member each). A field with an empty value is left out.
void event(spdlog::level::level_enum level, std::string_view message, std::initializer_list<LogField> fields);

}  // namespace steerdns::common
