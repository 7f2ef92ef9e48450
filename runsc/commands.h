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
// The OCI lifecycle (cmd_<name>.cc), with runsc's flags and output formats.
int CmdBoot(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdCreate(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdDelete(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdEvents(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdExec(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdFork(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdKill(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdList(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdPause(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdReleaseCgroups(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdPs(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdResume(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdRun(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdSpec(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdStart(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdState(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdUpdate(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdWait(const GlobalConfig& cfg, const std::vector<std::string>& args);
int CmdHelp(const GlobalConfig& cfg, const std::vector<std::string>& args);

const std::vector<Command>& Commands();
void PrintUsageError(const std::string& msg);

}  // namespace seedvisor::runsc

#endif  // SEEDVISOR_RUNSC_COMMANDS_H_
