// Helpers shared by the OCI lifecycle commands (cmd_create.cc ... cmd_wait.cc).
#ifndef SEEDVISOR_RUNSC_CMD_COMMON_H_
#define SEEDVISOR_RUNSC_CMD_COMMON_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runsc/commands.h"
#include "runsc/config.h"
#include "runsc/container/state.h"

namespace seedvisor::runsc {

// Prints "seedsc: <message>" and returns 1 (runsc's failure status).
int Fail(const absl::Status& s);
int Fail(const std::string& msg);

// Parses `fs` over `args` and checks the number of positionals; on a usage
// error prints it and returns false (the caller returns kExitUsage). On -h
// or --help prints the command's help to stdout and returns false too.
bool ParseArgs(FlagSet& fs, const std::vector<std::string>& args, size_t min_pos,
               size_t max_pos, const char* usage, std::vector<std::string>* pos);

// "Usage: seedsc USAGE", what the command does (`about`, else its synopsis
// in Commands()) and its flags, on stdout: `seedsc help CMD`, `CMD --help`.
void PrintCommandHelp(const FlagSet& fs, const std::string& usage, const std::string& about = "");

// The container's state, or prints why not (NotFound...) and returns it.
absl::StatusOr<container::State> LoadContainer(const GlobalConfig& cfg, const std::string& id);

// The global flags a child `seedsc boot` needs.
std::vector<std::string> BootGlobalFlags(const GlobalConfig& cfg);

// Test hook: how long to stall at `where` ("boot": `seedsc boot` before it
// reports ready; "do": `seedsc do` before it starts the command;
// "do-create": `seedsc do` before it creates the sandbox), from
// SEEDSC_TEST_BOOT_STALL=WHERE:SECONDS; 0 when not asked. Only tests set
// it: test/oci:boot_timeout_test, to make a sandbox that never comes up;
// test/oci:do_signal_test, to hold a boot while signals come.
unsigned TestStallSeconds(const std::string& where);

// --boot-timeout as a duration (absl::InfiniteDuration() for "0"), or why
// the flag is wrong (main() checks it before any command runs).
absl::StatusOr<absl::Duration> BootTimeout(const GlobalConfig& cfg);

// "KILL", "SIGKILL", "kill" or "9" → 9; 0 if unknown.
int ParseSignal(const std::string& s);

// An absolute version of `path` (against the cwd).
std::string AbsPath(const std::string& path);

// Writes `pid` to `path` atomically (a temporary file renamed); true for an
// empty path.
bool WritePidFile(const std::string& path, int pid);
// The path by which a sandbox process can open our fd `fd`
// (/proc/<our pid>/fd/N, opened through its host /proc), or "" if closed.
std::string OwnFdPath(int fd);

// Pulls every `--name X` / `--name=X` out of `args` (flags that may repeat,
// like exec --env), and the same forms of `alias` if given (exec's -e), in
// command-line order, leaving the rest. Flags are those before the first
// positional; `bools` names the flags that take no value.
std::vector<std::string> TakeRepeated(std::vector<std::string>* args, const std::string& name,
                                      const std::vector<std::string>& bools,
                                      const std::string& alias = "");

}  // namespace seedvisor::runsc

#endif  // SEEDVISOR_RUNSC_CMD_COMMON_H_
