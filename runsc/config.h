// The global flags every seedsc command sees (runsc's names and meanings).
#ifndef SEEDVISOR_RUNSC_CONFIG_H_
#define SEEDVISOR_RUNSC_CONFIG_H_

#include <string>

#include "runsc/flags.h"

namespace seedvisor::runsc {

struct GlobalConfig {
  std::string root = "/var/run/seedsc";
  std::string platform = "systrap";
  // none | host | sandbox; empty until ResolveNetworkDefault: as runsc,
  // sandbox for the OCI commands (create, run, boot, ...); none for `do`
  // (its sandbox veth wants a subnet of its own: two `do` at once would
  // need different --ip, so `do` makes one only when asked).
  std::string network;
  bool net_raw = false;  // runsc's --net-raw
  bool debug = false;
  std::string debug_log;
  std::string log;
  std::string log_format = "text";
  bool strace = false;
  bool rootless = false;
  // On by default (platform/systrap/PATCHING.md); --systrap-patch=false
  // keeps every syscall trapping.
  bool systrap_patch = true;
  // --boot-timeout: how long create, run, start and do wait for the sandbox
  // to come up (and the container's process to start); "0" waits forever.
  std::string boot_timeout = "60s";

  void Register(FlagSet& fs);
  // After parsing, before `command` runs: the default --network.
  void ResolveNetworkDefault(const std::string& command);
};

}  // namespace seedvisor::runsc

#endif  // SEEDVISOR_RUNSC_CONFIG_H_
