// The sentry's debug log (--debug, --debug-log=PATH) and its strace stream.
//
//   SV_DLOG("unsupported syscall %d", nr);   // only when debugging is on
//   Log::Warning("stub died: %s", why);      // always, to the debug log or stderr
#ifndef SEEDVISOR_SENTRY_BASE_LOG_H_
#define SEEDVISOR_SENTRY_BASE_LOG_H_

#include <string>

#include "absl/strings/str_format.h"

namespace seedvisor {

class Log {
 public:
  // Where the debug log goes: a file path, or "" for stderr. A trailing '/'
  // means a directory, in which a file named after the command is made.
  static void Init(bool debug, const std::string& path, const std::string& command);
  static bool debug();
  static void Write(const std::string& line);  // one line, timestamped

  template <typename... Args>
  static void Debug(const absl::FormatSpec<Args...>& fmt, const Args&... args) {
    if (debug()) Write(absl::StrFormat(fmt, args...));
  }
  template <typename... Args>
  static void Warning(const absl::FormatSpec<Args...>& fmt, const Args&... args) {
    Write(absl::StrFormat(fmt, args...));
  }
};

}  // namespace seedvisor

#endif  // SEEDVISOR_SENTRY_BASE_LOG_H_
