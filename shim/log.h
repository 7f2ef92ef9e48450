// The shim's log: one line per message on stderr, which the daemon points at
// the bundle's `log` fifo (containerd copies it into its own log).
//
//   ShimLog("create %s: %s", id, status.ToString());
#ifndef SEEDVISOR_SHIM_LOG_H_
#define SEEDVISOR_SHIM_LOG_H_

#include <unistd.h>

#include <string>

#include "absl/strings/str_format.h"

namespace seedvisor::shim {

// -debug (containerd passes it when its own log level is debug): also log
// every task RPC with its duration.
inline bool& ShimDebugEnabled() {
  static bool on = false;
  return on;
}

template <typename... Args>
void ShimLog(const absl::FormatSpec<Args...>& fmt, const Args&... args) {
  std::string line = "containerd-shim-seedsc-v1: " + absl::StrFormat(fmt, args...) + "\n";
  ssize_t r = write(2, line.data(), line.size());
  (void)r;
}

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_LOG_H_
