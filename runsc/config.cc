#include "runsc/config.h"

#include <cstdlib>

namespace seedvisor::runsc {

void GlobalConfig::Register(FlagSet& fs) {
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg != '\0') {
    root = std::string(xdg) + "/seedsc";
  }
  fs.String("root", &root, "root directory for storage of container state");
  fs.Choice("platform", &platform, {"ptrace", "systrap", "kvm"}, "the platform that runs guest code");
  fs.Choice("network", &network, {"none", "host", "sandbox"},
            "network: sandbox (the sandbox's own stack: the interfaces of the container's "
            "network namespace, loopback only if it has none; the default, as runsc's), host "
            "(passthrough), none (loopback only); `do` defaults to none");
  fs.Bool("net-raw", &net_raw,
          "enable raw sockets for guests with CAP_NET_RAW (off: nothing that needs "
          "CAP_NET_RAW works, as in runsc)");
  fs.Bool("debug", &debug, "enable debug logging");
  fs.String("debug-log", &debug_log,
            "additional location for logs; a trailing '/' means a directory");
  fs.String("log", &log, "file path where internal debug information is written");
  fs.Choice("log-format", &log_format, {"text", "json", "json-k8s"}, "log format");
  fs.Bool("strace", &strace, "enable strace of every guest syscall");
  fs.Bool("rootless", &rootless, "allow the sandbox to run as a non-root user");
  fs.Bool("systrap-patch", &systrap_patch,
          "systrap: patch hot syscall sites into jumps to the stub's fast path "
          "(platform/systrap/PATCHING.md; on by default where the CPU has BMI2; "
          "--systrap-patch=false keeps every syscall trapping)");
  fs.String("boot-timeout", &boot_timeout,
            "how long create, run, start and do wait for the sandbox to come up and the "
            "container's process to start (e.g. 60s, 2m; 0 waits forever); past it they fail "
            "with one line and kill what they started (create, run and do leave no state "
            "behind; runsc has no such flag)");
}

void GlobalConfig::ResolveNetworkDefault(const std::string& command) {
  if (network.empty()) network = command == "do" ? "none" : "sandbox";
}

}  // namespace seedvisor::runsc
