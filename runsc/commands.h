// seedsc's subcommands. Each takes its own arguments (after the command
// name) and returns seedsc's exit status.
#ifndef SEEDVISOR_RUNSC_COMMANDS_H_
#define SEEDVISOR_RUNSC_COMMANDS_H_

#include <string>
#include <vector>

#include "runsc/config.h"

namespace seedvisor::runsc {

struct Command {
  const char* name;
  const char* synopsis;
  int (*run)(const GlobalConfig& cfg, const std::vector<std::string>& args);
};

// Exit status for a usage error (bad flag or argument), as runsc's
// subcommands package uses.
inline constexpr int kExitUsage = 2;

int CmdDo(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdHelp(const GlobalConfig& cfg, const std::vector<std::string>& args);

const std::vector<Command>& Commands();
void PrintUsageError(const std::string& msg);

}  // namespace seedvisor::runsc

#endif  // SEEDVISOR_RUNSC_COMMANDS_H_
