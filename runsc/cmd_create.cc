// `seedsc create [--bundle B] [--pid-file F] [--console-socket S] ID`:
// starts the container's sandbox and leaves it waiting for `start`.
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"

namespace seedvisor::runsc {

// Shared with `run`.
absl::StatusOr<container::State> CreateContainer(const GlobalConfig& cfg, const std::string& id,
                                                 const std::string& bundle,
                                                 const std::string& pid_file,
                                                 const std::string& console_socket) {
  container::CreateOptions o;
  o.root = cfg.root;
  o.id = id;
  o.bundle = AbsPath(bundle.empty() ? "." : bundle);
  o.pid_file = pid_file.empty() ? "" : AbsPath(pid_file);
  o.console_socket = console_socket.empty() ? "" : AbsPath(console_socket);
  o.host_network = cfg.network == "host";
  o.sandbox_network = cfg.network == "sandbox";
  o.global_flags = BootGlobalFlags(cfg);
  o.boot_timeout = BootTimeout(cfg).value_or(o.boot_timeout);  // main() checked it
  return container::CreateSandbox(o);
}

int CmdCreate(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("create");
  std::string bundle, pid_file, console_socket, user_log;
  fs.String("bundle", &bundle, "path to the root of the bundle directory (default: cwd)");
  fs.String("pid-file", &pid_file, "file to write the sandbox process's pid to");
  fs.String("console-socket", &console_socket,
            "unix socket to send the pty master to (process.terminal)");
  fs.String("user-log", &user_log, "accepted for runsc compatibility; unused");
  fs.Alias("b", "bundle");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "create [flags] <container id>", &pos)) return kExitUsage;
  auto st = CreateContainer(cfg, pos[0], bundle, pid_file, console_socket);
  if (!st.ok()) return Fail(st.status());
  return 0;
}

}  // namespace seedvisor::runsc
