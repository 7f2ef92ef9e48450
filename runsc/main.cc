// seedsc: the Seedvisor runtime, with runsc's command line.
#include <signal.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runsc/cmd_common.h"
#include "runsc/commands.h"
#include "runsc/config.h"
#include "runsc/version.h"
#include "sentry/base/log.h"
#include "sentry/sfork/sfork.h"

namespace seedvisor::runsc {

const std::vector<Command>& Commands() {
  static const std::vector<Command> kCommands = {
      {"boot", "(internal) the sandbox process of one container", CmdBoot},
      {"create", "create a container from a bundle, ready to start", CmdCreate},
      {"delete", "delete a container and everything it holds", CmdDelete},
      {"do", "run a command in a sandbox over the host's root (read-only, overlay)", CmdDo},
      {"events", "print the container's resource usage (--stats: once)", CmdEvents},
      {"exec", "run another process in a container", CmdExec},
      {"fork", "fork a paused container (a seed) into a new container", CmdFork},
      {"kill", "send a signal to a container's process(es)", CmdKill},
      {"list", "list the containers under --root", CmdList},
      {"pause", "pause every process of a container", CmdPause},
      {"release-cgroups", "(internal) remove the cgroups seedsc made for a path", CmdReleaseCgroups},
      {"ps", "list a container's processes", CmdPs},
      {"resume", "resume a paused container", CmdResume},
      {"run", "create, start and wait for a container, then delete it", CmdRun},
      {"spec", "write a default config.json", CmdSpec},
      {"start", "start a created container", CmdStart},
      {"state", "print a container's OCI state", CmdState},
      {"update", "set new resource limits (--resources JSON) for a container", CmdUpdate},
      {"wait", "wait for a container's process and print its exit status", CmdWait},
      {"help", "show help for seedsc or a command (help syscalls: the syscall table)", CmdHelp},
  };
  return kCommands;
}

void PrintUsageError(const std::string& msg) { std::fprintf(stderr, "seedsc: %s\n", msg.c_str()); }

}  // namespace seedvisor::runsc

int main(int argc, char** argv) {
  using namespace seedvisor::runsc;
  // Before any thread: `boot` becomes a seed, whose sandbox forks are host
  // forks of this process while its other threads run.
  seedvisor::sentry::PrepareForSandboxForks();
  std::vector<std::string> args(argv + 1, argv + argc);
  GlobalConfig cfg;
  FlagSet global("");
  bool version = false;
  cfg.Register(global);
  global.Bool("version", &version, "show the version and exit");
  auto rest = global.Parse(args);
  if (!rest.ok()) {
    PrintUsageError(std::string(rest.status().message()));
    return kExitUsage;
  }
  if (absl::StatusOr<absl::Duration> t = BootTimeout(cfg); !t.ok()) {
    PrintUsageError(std::string(t.status().message()));
    return kExitUsage;
  }
  if (version) {
    std::printf("seedsc version %s\nspec: 1.0.2\n", kVersion);
    return 0;
  }
  if (rest->empty()) {
    CmdHelp(cfg, {});
    return kExitUsage;
  }
  std::string name = (*rest)[0];
  std::vector<std::string> cmd_args(rest->begin() + 1, rest->end());
  for (const Command& c : Commands()) {
    if (name == c.name) {
      seedvisor::Log::Init(cfg.debug, cfg.debug_log, name);
      cfg.ResolveNetworkDefault(name);
      // A closed pipe on our side must come back to the guest as EPIPE.
      signal(SIGPIPE, SIG_IGN);
      return c.run(cfg, cmd_args);
    }
  }
  PrintUsageError(absl::StrCat("unknown command \"", name, "\" (see \"seedsc help\")"));
  return kExitUsage;
}
