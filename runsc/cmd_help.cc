// `seedsc help [COMMAND]` and `seedsc help syscalls`.
#include <cstdio>

#include "runsc/commands.h"
#include "sentry/syscalls/table.h"

namespace seedvisor::runsc {
namespace {

void PrintSyscalls() {
  std::printf("| nr | syscall | support | note |\n|---:|---|---|---|\n");
  for (const sentry::SyscallEntry& e : sentry::AllSyscalls()) {
    std::printf("| %d | %s | %s | %s |\n", e.nr, e.name, sentry::SupportName(e.support), e.note);
  }
}

}  // namespace

int CmdHelp(const GlobalConfig&, const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "syscalls") {
    PrintSyscalls();
    return 0;
  }
  if (!args.empty()) {
    if (args[0] == "do") {
      std::printf(
          "seedsc do [flags] [--] CMD [ARGS...]\n\n"
          "Runs CMD in a sandbox whose root is the host's / (read-only) with a writable\n"
          "overlay held by the sandbox: writes inside never reach the host. The exit\n"
          "status is CMD's (128+N if killed by signal N).\n\n"
          "Flags:\n  --cwd=DIR   working directory of CMD (default: the current one)\n"
          "  --quiet     suppress seedsc's own messages\n"
          "  --ip=ADDR   IPv4 address (with --network=sandbox; not supported yet)\n");
      return 0;
    }
    bool known = false;
    for (const Command& c : Commands()) known |= args[0] == c.name;
    if (!known) {
      PrintUsageError("help: unknown command \"" + args[0] + "\"");
      return kExitUsage;
    }
  }
  GlobalConfig cfg;
  FlagSet fs("");
  cfg.Register(fs);
  std::printf("Usage: seedsc [global flags] COMMAND [flags] [args]\n\nCommands:\n");
  for (const Command& c : Commands()) std::printf("  %-10s %s\n", c.name, c.synopsis);
  std::printf("  help syscalls  the syscall table: what is supported\n\nGlobal flags:\n%s",
              fs.Usage().c_str());
  std::printf("  --version\n        show the version and exit\n");
  return 0;
}

}  // namespace seedvisor::runsc
