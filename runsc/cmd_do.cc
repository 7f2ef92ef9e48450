// `seedsc do [flags] [--] CMD ARGS...`: run a command in a sandbox over the
// host's root (read-only, with a writable overlay held by the sandbox).
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runsc/cmd_common.h"
#include "runsc/commands.h"
#include "runsc/do_network.h"
#include "seccomp/sentry_filter.h"
#include "sentry/control/mounts.h"
#include "sentry/base/deadline.h"
#include "sentry/base/log.h"
#include "sentry/base/mono_condvar.h"
#include "sentry/fs/mqueue/mqueue.h"
#include "sentry/fs/sys/mount_sys.h"
#include "sentry/kernel/host_thread.h"
#include "sentry/kernel/kernel.h"

extern char** environ;

namespace seedvisor::runsc {
namespace {

// The signals a user sends `seedsc do` (Ctrl-C, kill, a terminal's
// resize), for the sandbox's init, as runsc do forwards them. They are
// blocked from CmdDo's first line on, in every thread seedsc makes (each
// inherits the mask; the platform's zygote starts with none blocked), so
// that none ends seedsc while the sandbox boots. One thread takes them
// (sigwait) and holds them until the command has started, then sends them
// to its init in the order they came: a signal that comes while the
// sandbox boots is not lost. One of each is held, as Linux keeps one of
// each standard signal pending.
class SignalForwarder {
 public:
  static sigset_t Signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT, SIGTSTP}) {
      sigaddset(&set, s);
    }
    return set;
  }
  // In the calling thread, and so in every thread it makes from now on.
  static void Block() {
    const sigset_t set = Signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

  // On a thread of its own, for the rest of seedsc's life.
  void Run() {
    const sigset_t set = Signals();
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      absl::MutexLock l(&mu_);
      if (kernel_ != nullptr) {
        SendLocked(sig);
      } else if (std::find(held_.begin(), held_.end(), sig) == held_.end()) {
        Log::Debug("holding signal %d until the command has started", sig);
        held_.push_back(sig);
      }
    }
  }

  // The command has started in `k` (its init exists): what was held goes
  // to the init now, later signals as they come.
  void Started(sentry::Kernel* k) {
    absl::MutexLock l(&mu_);
    kernel_ = k;
    for (int sig : held_) SendLocked(sig);
    held_.clear();
  }
  // Before `k` goes away (a command that did not start): signals are held
  // again, for nobody.
  void Stop() {
    absl::MutexLock l(&mu_);
    kernel_ = nullptr;
  }

 private:
  void SendLocked(int sig) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Log::Debug("forwarding signal %d to the sandbox", sig);
    absl::MutexLock l(&kernel_->mu());
    auto init = kernel_->init_tg();
    if (!init) return;
    siginfo_t info{};
    info.si_signo = sig;
    info.si_code = SI_USER;
    kernel_->SendGroupSignal(*init, info, nullptr, sentry::SignalSender::kDoForward).ok();
  }

  // Lock order: mu_ before the kernel's mu() (SendLocked takes it under
  // mu_, so that Stop() cannot let the kernel go while a signal is on its
  // way in). Nothing of the kernel calls into this class, so the order
  // never reverses; keep it so.
  absl::Mutex mu_;
  sentry::Kernel* kernel_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<int> held_ ABSL_GUARDED_BY(mu_);
};

// Every process below ours (the platform's zygote and stubs), deepest
// first, by /proc/PID/task/TID/children. Best effort.
void CollectDescendants(pid_t pid, std::vector<pid_t>* out, int depth = 0) {
  if (depth > 8) return;
  DIR* d = opendir(absl::StrCat("/proc/", pid, "/task").c_str());
  if (d == nullptr) return;
  std::vector<pid_t> kids;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/task/", e->d_name, "/children"));
    for (pid_t c; in >> c;) kids.push_back(c);
  }
  closedir(d);
  for (pid_t c : kids) {
    CollectDescendants(c, out, depth + 1);
    out->push_back(c);
  }
}

// --boot-timeout for `do`: unless the command has started (its exec done)
// by then, one line says what seedsc was doing, the platform's processes
// are killed and reaped (seedsc do is their subreaper) and seedsc exits
// with 128, as when it cannot create the sandbox.
class StartWatchdog {
 public:
  StartWatchdog(absl::Duration timeout, std::string cmd) : timeout_(timeout), cmd_(std::move(cmd)) {}
  void SetPhase(const char* what) { phase_.store(what); }
  void Started() {
    absl::MutexLock l(&mu_);
    started_ = true;
    started_cv_.SignalAll();
  }
  // On a thread of its own; returns once the command started.
  void Watch() {
    // Signals for seedsc go to its forwarder (or, before there is one, end
    // it as before): never to this thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    {
      absl::MutexLock l(&mu_);
      // On the monotonic clock (issue 10): a wall-clock step must not kill
      // a sandbox that is booting on time, nor let a stuck one live on.
      if (started_cv_.Await(&mu_, absl::Condition(&started_), sentry::Deadline::In(timeout_))) return;
    }
    std::fprintf(stderr, "seedsc: do: %s did not start within %s (--boot-timeout): still %s; killed the sandbox\n",
                 cmd_.c_str(), absl::FormatDuration(timeout_).c_str(), phase_.load());
    std::vector<pid_t> below;
    CollectDescendants(getpid(), &below);
    for (pid_t p : below) kill(p, SIGKILL);
    for (int i = 0; i < 200; ++i) {  // up to 2 s
      pid_t r = waitpid(-1, nullptr, WNOHANG | __WALL);
      if (r < 0 && errno == ECHILD) break;
      if (r <= 0) usleep(10000);
    }
    _exit(128);
  }

 private:
  const absl::Duration timeout_;
  const std::string cmd_;
  absl::Mutex mu_;
  sentry::MonoCondVar started_cv_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<const char*> phase_{"setting up"};
};

// --volume's SRC:DST pairs as writable bind mounts.
absl::StatusOr<std::vector<control::MountSpec>> ParseVolumes(const std::string& flag) {
  std::vector<control::MountSpec> binds;
  if (flag.empty()) return binds;
  for (absl::string_view v : absl::StrSplit(flag, ',')) {
    std::vector<std::string> parts = absl::StrSplit(v, absl::MaxSplits(':', 1));
    if (parts.size() != 2 || parts[0].empty() || parts[0][0] != '/' || parts[1].empty() ||
        parts[1][0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat(
          "do: --volume: \"", v, "\": not SRC:DST with absolute host and sandbox paths"));
    }
    binds.push_back({parts[1], "bind", parts[0], {"rbind", "rw"}});
  }
  return binds;
}

}  // namespace

int CmdDo(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  // From the first line: a signal for the command must not end seedsc
  // while the sandbox boots (SignalForwarder).
  SignalForwarder::Block();
  FlagSet fs("do");
  bool quiet = false;
  std::string ip;
  std::string cwd;
  if (char buf[4096]; getcwd(buf, sizeof(buf)) != nullptr) cwd = buf;
  fs.String("cwd", &cwd, "working directory of the command");
  fs.Bool("quiet", &quiet, "suppress seedsc's own messages");
  std::string netns;
  fs.String("netns", &netns,
            "with --network=sandbox: a network namespace (a path such as /run/netns/NAME) whose "
            "Ethernet interfaces and addresses the sandbox takes over and serves from its own stack");
  fs.String("ip", &ip,
            "with --network=sandbox and no --netns: the sandbox's IPv4 address A.B.C.D[/N] (default "
            "192.168.10.2/24) on a veth seedsc makes; the host end (svd<pid>) gets .1 of the "
            "subnet (.2 if the sandbox is .1). No default route, no NAT: only the host end and "
            "the sandbox reach each other. The veth goes with the sandbox");
  bool veth = true;
  fs.Bool("veth", &veth,
          "with --network=sandbox and no --netns: make the veth pair (false: the sandbox's own "
          "stack has loopback only)");
  std::string volumes;
  fs.String("volume", &volumes,
            "SRC:DST[,SRC:DST...]: the host directory SRC bound writable at DST (absolute "
            "paths), as a container's bind volume: what the command writes there is on the "
            "host at once, and the rest of the root stays the read-only host with the overlay");
  auto rest = fs.Parse(args);
  if (!rest.ok()) {
    PrintUsageError(std::string(rest.status().message()));
    return kExitUsage;
  }
  absl::StatusOr<std::vector<control::MountSpec>> binds = ParseVolumes(volumes);
  if (!binds.ok()) {
    PrintUsageError(std::string(binds.status().message()));
    return kExitUsage;
  }
  if (fs.help_requested()) {
    PrintCommandHelp(fs, "do [flags] [--] CMD [ARGS...]",
                     "Runs CMD in a sandbox whose root is the host's / (read-only) with a writable\n"
                     "overlay held by the sandbox: writes inside never reach the host, but for\n"
                     "--volume directories. The exit status is CMD's (128+N if killed by\n"
                     "signal N).");
    return kExitUsage;
  }
  if (rest->empty()) {
    PrintUsageError("do: missing command: seedsc do [flags] [--] CMD [ARGS...]");
    return kExitUsage;
  }
  if (!ip.empty() && (cfg.network != "sandbox" || !netns.empty() || !veth)) {
    PrintUsageError("do: --ip needs --network=sandbox, no --netns and --veth");
    return kExitUsage;
  }

  if (!netns.empty() && cfg.network != "sandbox") {
    PrintUsageError("do: --netns needs --network=sandbox");
    return kExitUsage;
  }
  if (!netns.empty()) {
    // Join it before the sandbox is made: its interfaces become the
    // sandbox's, and nothing of the caller's own network is touched.
    int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      std::fprintf(stderr, "seedsc: do: --netns=%s: %s\n", netns.c_str(), std::strerror(errno));
      if (fd >= 0) close(fd);
      return kExitUsage;
    }
    close(fd);
  } else if (cfg.network == "sandbox" && veth) {
    // A namespace and a veth of the sandbox's own (runsc/do_network.h).
    absl::StatusOr<SandboxAddrs> addrs = ParseSandboxIp(ip.empty() ? kDefaultSandboxIp : ip);
    if (!addrs.ok()) {
      PrintUsageError(std::string(addrs.status().message()));
      return kExitUsage;
    }
    if (absl::Status s = MakeSandboxNetwork(*addrs, getpid()); !s.ok()) {
      std::fprintf(stderr, "seedsc: do: %s\n", std::string(s.message()).c_str());
      return 128;
    }
  }

  // Signals for the command from now on (blocked since the first line):
  // held until it has started.
  auto forwarder = std::make_shared<SignalForwarder>();
  {
    Result<sentry::HostThread> t = sentry::HostThread::Spawn();
    if (!t.ok()) {
      std::fprintf(stderr, "seedsc: creating the sandbox: the host refused a thread (%s)\n",
                   std::strerror(t.error().value()));
      return 128;
    }
    std::move(*t).Run([forwarder] { forwarder->Run(); });
  }
  // The sandbox's stubs are its zygote's children: as a child subreaper,
  // seedsc gets them when the zygote goes and reaps them at the end
  // (StopHostProcesses), instead of leaving zombies to the host's pid 1.
  prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  const absl::Duration boot_timeout = BootTimeout(cfg).value_or(absl::Seconds(60));  // main() checked it
  auto watchdog = std::make_shared<StartWatchdog>(boot_timeout, (*rest)[0]);
  if (boot_timeout != absl::InfiniteDuration()) {
    Result<sentry::HostThread> w = sentry::HostThread::Spawn();
    if (!w.ok()) {
      std::fprintf(stderr, "seedsc: creating the sandbox: the host refused a thread (%s)\n",
                   std::strerror(w.error().value()));
      return 128;
    }
    std::move(*w).Run([watchdog] { watchdog->Watch(); });
  }
  watchdog->SetPhase("creating the sandbox");
  if (unsigned stall = TestStallSeconds("do-create"); stall > 0) sleep(stall);
  sentry::KernelOptions opts;
  opts.platform = cfg.platform;
  opts.strace = cfg.strace;
  opts.network = cfg.network;
  opts.take_over_interfaces = cfg.network == "sandbox" && (veth || !netns.empty());
  opts.net_raw = cfg.net_raw;
  opts.cwd = cwd.empty() ? "/" : cwd;
  // --systrap-patch reaches the platform as NewSystrapPlatform reads it
  // (SEEDVISOR_SYSTRAP_PATCH), only while the kernel is made: the guest's
  // environment never carries it.
  setenv("SEEDVISOR_SYSTRAP_PATCH", cfg.systrap_patch ? "1" : "0", 1);
  auto kernel = sentry::Kernel::Create(opts);
  unsetenv("SEEDVISOR_SYSTRAP_PATCH");
  if (!kernel.ok()) {
    std::fprintf(stderr, "seedsc: creating the sandbox: %s\n",
                 std::string(kernel.status().message()).c_str());
    return 128;
  }
  // The sandbox's POSIX message queues at /dev/mqueue, as a host mounts them.
  if (absl::Status s = sentry::MountMqueue(**kernel, "/dev/mqueue");
      !s.ok()) {
    std::fprintf(stderr, "seedsc: creating the sandbox: %s\n", std::string(s.message()).c_str());
    return 128;
  }
  // The sandbox's own /sys, as runsc do mounts its own: the host's sysfs
  // under the host root would show the host's devices and settings, and a
  // read of some of its files changes the host (tracefs's trace_pipe
  // consumes the host's trace buffer).
  if (absl::Status s = sentry::MountSysFs(**kernel, "/sys"); !s.ok()) {
    std::fprintf(stderr, "seedsc: creating the sandbox: /sys: %s\n",
                 std::string(s.message()).c_str());
    return 128;
  }
  // Before RunInit installs the sentry's filter: a writable bind asks for
  // the host writes it needs there (control/mounts.cc).
  if (absl::Status s = control::ApplyMounts((*kernel)->vfs(), *binds); !s.ok()) {
    std::fprintf(stderr, "seedsc: do: --volume: %s\n", std::string(s.message()).c_str());
    return 128;
  }
  watchdog->SetPhase("starting the command (its exec)");
  if (unsigned stall = TestStallSeconds("do"); stall > 0) {
    // A command whose start never finishes. The exec it stands for runs
    // under the sentry's filter (RunInit installs it): so does the stall,
    // and the watchdog must do its work within that policy.
    if (int r = seccomp::InstallSentryFilter(); r != 0) {
      std::fprintf(stderr, "seedsc: do: installing the sentry's seccomp filter: %s\n", std::strerror(-r));
      return 128;
    }
    sleep(stall);
  }
  std::vector<std::string> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.emplace_back(*e);
  absl::StatusOr<int> status =
      (*kernel)->RunInit(*rest, envp, [watchdog, forwarder, k = kernel->get()] {
        watchdog->Started();
        forwarder->Started(k);
      });
  if (!status.ok()) {
    forwarder->Stop();  // the kernel goes with this return
    std::fprintf(stderr, "seedsc: %s\n", std::string(status.status().message()).c_str());
    return absl::IsNotFound(status.status()) ? 127 : 126;
  }
  int st = *status;
  Log::Debug("sandbox init exited with wait status %#x", st);
  // Leave the kernel to the process exit: its threads may still be parked.
  // Its host processes go first, reaped here, not left to the host's pid 1.
  (*kernel)->platform().StopHostProcesses();
  kernel->release();
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return 128 + WTERMSIG(st);
}

}  // namespace seedvisor::runsc
