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

int CmdHelp(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "syscalls") {
    PrintSyscalls();
    return 0;
  }
  if (!args.empty()) {
    // Each command prints its own flags when asked for --help (it parses
    // them before it does anything).
    for (const Command& c : Commands()) {
      if (args[0] == c.name && c.run != CmdHelp) {
        c.run(cfg, {"--help"});
        return 0;
      }
    }
    if (args[0] != "help") {
      PrintUsageError("help: unknown command \"" + args[0] + "\"");
      return kExitUsage;
    }
  }
  GlobalConfig defaults;
  FlagSet fs("");
  defaults.Register(fs);
  std::printf("Usage: seedsc [global flags] COMMAND [flags] [args]\n\nCommands:\n");
  for (const Command& c : Commands()) std::printf("  %-10s %s\n", c.name, c.synopsis);
  std::printf("  help syscalls  the syscall table: what is supported\n\nGlobal flags:\n%s",
              fs.Usage().c_str());
  std::printf("  --version\n        show the version and exit\n");
  return 0;
}

}  // namespace seedvisor::runsc
