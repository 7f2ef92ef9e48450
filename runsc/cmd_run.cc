// `seedsc run [--bundle B] [--pid-file F] [--console-socket S] [--detach] ID`:
// create + start + wait + delete; the exit status is the container's.
#include <signal.h>
#include <sys/wait.h>

#include <thread>

#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {

absl::StatusOr<container::State> CreateContainer(const GlobalConfig& cfg, const std::string& id,
                                                 const std::string& bundle,
                                                 const std::string& pid_file,
                                                 const std::string& console_socket);
absl::Status StartContainer(const GlobalConfig& cfg, const container::State& st);
absl::StatusOr<control::v1::WaitResponse> WaitContainer(const container::State& st, int pid);
absl::Status DeleteContainer(const GlobalConfig& cfg, const std::string& id, bool force);

namespace {

// Forwards the signals seedsc run gets (Ctrl-C, kill) to the container.
void ForwardSignals(container::State st, sigset_t set) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    control::v1::SignalRequest req;
    req.set_container_id(st.id);
    req.set_signal(sig);
    control::v1::SignalResponse resp;
    container::Call(st, "Signal", req, &resp).IgnoreError();
  }
}

}  // namespace

int CmdRun(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("run");
  std::string bundle, pid_file, console_socket, user_log;
  bool detach = false;
  fs.String("bundle", &bundle, "path to the root of the bundle directory (default: cwd)");
  fs.String("pid-file", &pid_file, "file to write the sandbox process's pid to");
  fs.String("console-socket", &console_socket, "unix socket to send the pty master to");
  fs.String("user-log", &user_log, "accepted for runsc compatibility; unused");
  fs.Bool("detach", &detach, "do not wait for the container to exit");
  fs.Alias("b", "bundle");
  fs.Alias("d", "detach");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "run [flags] <container id>", &pos)) return kExitUsage;
  auto st = CreateContainer(cfg, pos[0], bundle, pid_file, console_socket);
  if (!st.ok()) return Fail(st.status());
  if (absl::Status s = StartContainer(cfg, *st); !s.ok()) {
    DeleteContainer(cfg, st->id, true).IgnoreError();
    return Fail(s);
  }
  if (detach) return 0;
  sigset_t fwd;
  sigemptyset(&fwd);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) sigaddset(&fwd, s);
  pthread_sigmask(SIG_BLOCK, &fwd, nullptr);
  std::thread(ForwardSignals, *st, fwd).detach();
  auto resp = WaitContainer(*st, 0);
  absl::Status del = DeleteContainer(cfg, st->id, true);
  if (!resp.ok()) return Fail(resp.status());
  if (!del.ok()) Fail(del);
  return static_cast<int>(resp->exit_status());
}

}  // namespace seedvisor::runsc
