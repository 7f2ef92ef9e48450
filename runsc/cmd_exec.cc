// `seedsc exec [flags] ID [CMD ARGS...]`: runs another process in the
// container's sandbox through its control server. The process is based on
// the container's (env, cwd, user), as runc/runsc build it, with --process
// FILE or the command line and --env/--cwd/--user on top. Its stdio is
// seedsc's own (the sandbox opens /proc/<seedsc pid>/fd/N), or a pty sent to
// --console-socket. Without --detach, seedsc waits and exits with its status;
// with --detach, a waiter process that does is left behind (its pid goes to
// --pid-file, as runsc's), and the sandbox pid to --internal-pid-file.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {
int CmdExec(const GlobalConfig& cfg, const std::vector<std::string>& in_args) {
  std::vector<std::string> args = in_args;
  const std::vector<std::string> bools = {"detach", "d", "tty", "t"};
  // -e: runc's short form of --env (runsc has none), in command-line order.
  std::vector<std::string> envs = TakeRepeated(&args, "env", bools, "e");
  std::vector<std::string> gids = TakeRepeated(&args, "additional-gids", bools);
  std::vector<std::string> caps = TakeRepeated(&args, "cap", bools);
  FlagSet fs("exec");
  std::string process_file, pid_file, internal_pid_file, console_socket, cwd, user;
  bool detach = false;
  fs.String("process", &process_file, "path to a process.json");
  fs.Bool("detach", &detach, "do not wait for the process to exit");
  fs.String("pid-file", &pid_file, "file to write the waiter's pid to (with --detach)");
  fs.String("internal-pid-file", &internal_pid_file, "file to write the sandbox pid to");
  fs.String("console-socket", &console_socket, "unix socket to send the pty master to");
  fs.String("cwd", &cwd, "working directory inside the container");
  fs.String("user", &user, "UID[:GID] to run as");
  // Taken out above (they repeat); here for the help text only.
  std::string repeated_help;
  fs.String("env", &repeated_help,
            "NAME=VALUE for the process's environment (repeatable; -e as runc)");
  fs.String("additional-gids", &repeated_help, "an additional group id (repeatable)");
  fs.String("cap", &repeated_help, "a capability to add to the process (repeatable)");
  fs.Alias("d", "detach");
  fs.Alias("p", "process");
  fs.Alias("u", "user");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 100000, "exec [flags] <container id> [command args...]", &pos)) {
    return kExitUsage;
  }
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  auto spec = container::SavedSpec(cfg.root, *st);
  if (!spec.ok()) return Fail(spec.status());
  oci::Process proc = spec->process;
  if (!process_file.empty()) {
    auto p = oci::LoadProcess(process_file);
    if (!p.ok()) return Fail(p.status());
    proc = *p;
  } else {
    if (pos.size() < 2) {
      PrintUsageError("exec: no command given (and no --process)");
      return kExitUsage;
    }
    proc.args.assign(pos.begin() + 1, pos.end());
    proc.terminal = false;
  }
  for (const auto& e : envs) proc.env.push_back(e);
  if (!cwd.empty()) proc.cwd = cwd;
  if (!user.empty()) {
    std::vector<std::string> ug = absl::StrSplit(user, ':');
    proc.user.uid = std::atoi(ug[0].c_str());
    if (ug.size() > 1) proc.user.gid = std::atoi(ug[1].c_str());
  }
  for (const auto& g : gids) proc.user.additional_gids.push_back(std::atoi(g.c_str()));
  oci::AddDefaultHome(st->rootfs, proc.user.uid, &proc.env);

  control::v1::ExecRequest req;
  req.set_container_id(st->id);
  for (const auto& a : proc.args) req.add_args(a);
  for (const auto& e : proc.env) req.add_env(e);
  req.set_cwd(proc.cwd);
  req.mutable_user()->set_uid(proc.user.uid);
  req.mutable_user()->set_gid(proc.user.gid);
  for (gid_t g : proc.user.additional_gids) req.mutable_user()->add_additional_gids(g);
  for (const auto& c : caps) req.add_capabilities(c);
  req.set_no_new_privileges(proc.no_new_privileges);
  control::v1::Stdio* io = req.mutable_stdio();
  if (proc.terminal) {
    if (console_socket.empty()) return Fail("exec: a terminal needs --console-socket");
    io->set_terminal(true);
    io->set_console_socket(AbsPath(console_socket));
  } else {
    io->set_stdin(OwnFdPath(0));
    io->set_stdout(OwnFdPath(1));
    io->set_stderr(OwnFdPath(2));
  }
  control::v1::ExecResponse resp;
  if (absl::Status s = container::Call(*st, "Exec", req, &resp); !s.ok()) return Fail(s);
  int pid = resp.pid();
  if (!WritePidFile(internal_pid_file, pid)) return Fail("writing --internal-pid-file");

  control::v1::WaitRequest wreq;
  wreq.set_container_id(st->id);
  wreq.set_pid(pid);
  if (detach) {
    pid_t waiter = fork();
    if (waiter < 0) return Fail("fork: cannot start the waiter");
    if (waiter == 0) {
      setsid();
      int null = open("/dev/null", O_RDWR);
      for (int fd = 0; fd < 3; ++fd) dup2(null, fd);
      control::v1::WaitResponse w;
      if (!container::Call(*st, "Wait", wreq, &w).ok()) _exit(255);
      _exit(static_cast<int>(w.exit_status() & 0xff));
    }
    if (!WritePidFile(pid_file.empty() ? "" : AbsPath(pid_file), waiter)) {
      return Fail("writing --pid-file");
    }
    return 0;
  }
  if (!pid_file.empty() && !WritePidFile(AbsPath(pid_file), getpid())) return Fail("writing --pid-file");
  control::v1::WaitResponse w;
  if (absl::Status s = container::Call(*st, "Wait", wreq, &w); !s.ok()) return Fail(s);
  return static_cast<int>(w.exit_status());
}

}  // namespace seedvisor::runsc
