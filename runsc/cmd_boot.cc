// `seedsc boot` (internal): the sandbox process of one container. `create`
// starts it in new pid/mount/ipc/uts (and net) namespaces; it enters the
// container's cgroups, builds the kernel over the bundle's rootfs, serves the
// control socket, reports "ok" on --ready-fd and waits for Start, Exec, ...
// until Shutdown. Nothing here runs per operation.
#include <errno.h>
#include <fcntl.h>
#include <sys/capability.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <span>

#include "absl/strings/str_cat.h"
#include "runsc/cmd_common.h"
#include "runsc/container/cgroup.h"
#include "runsc/container/sandbox.h"
#include "runsc/oci/spec.h"
#include "sentry/base/log.h"
#include "sentry/control/mounts.h"
#include "seccomp/sentry_filter.h"
#include "sentry/control/server.h"
#include "sentry/control/stdio.h"
#include "sentry/kernel/host_thread.h"
#include "sentry/kernel/kernel.h"
#include "sentry/socket/net_takeover.h"
#include "sentry/socket/netns.h"
#include "shim/ttrpc/server.h"

namespace seedvisor::runsc {
namespace {

// Tells `create` how boot went, once: "ok" or the error. The fd is our end
// of a socketpair (container::CreateSandbox) that also brings create's
// answer once it has recorded the sandbox (EndUnlessRecorded).
class ReadyPipe {
 public:
  explicit ReadyPipe(int fd) : fd_(fd) {}
  // Reports "ok ..." and hands over the fd (-1: none) for EndUnlessRecorded.
  int ReportOk(const std::string& msg) {
    const int fd = fd_;
    fd_ = -1;
    std::string line = msg + "\n";
    if (fd >= 0 && write(fd, line.data(), line.size()) < 0) {
      // create went away: EndUnlessRecorded reads the end of the socket.
    }
    return fd;
  }
  int Report(const std::string& msg) {
    if (fd_ >= 0) {
      std::string line = msg + "\n";
      if (write(fd_, line.data(), line.size()) < 0) {
        // create went away: nothing to tell.
      }
      close(fd_);
      fd_ = -1;
    }
    return msg == "ok" ? 0 : 1;
  }

 private:
  int fd_;
};

// The sandbox process keeps only the capabilities it needs from here on:
// reading the container's files whatever their modes (DAC_OVERRIDE,
// DAC_READ_SEARCH, FOWNER), its stub processes and the stdio of `seedsc
// exec` callers (SYS_PTRACE), signalling its stubs (KILL), binding ports
// below 1024 for guests that hold CAP_NET_BIND_SERVICE themselves (the
// sentry checks theirs). Everything else (SYS_ADMIN, NET_ADMIN, SETUID, ...)
// leaves the bounding set too, so no child can regain it. Runs before any
// thread exists: capabilities are per thread.
// `host_writes`: the sandbox writes through to host files (a writable bind
// mount, sentry/fs/host/host_rw.h): CAP_CHOWN too, so that a file the
// guest makes there is the guest's (its fsuid and fsgid), as under runc.
absl::Status DropCapabilities(bool host_writes) {
  static constexpr cap_value_t kKeepAll[] = {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER,
                                             CAP_SYS_PTRACE,   CAP_KILL,
                                             CAP_NET_BIND_SERVICE, CAP_CHOWN};
  const std::span<const cap_value_t> kKeep(kKeepAll, std::size(kKeepAll) - (host_writes ? 0 : 1));
  auto kept = [&kKeep](cap_value_t c) {
    for (cap_value_t k : kKeep) {
      if (k == c) return true;
    }
    return false;
  };
  for (cap_value_t c = 0; c < static_cast<cap_value_t>(cap_max_bits()); ++c) {
    if (!kept(c) && cap_drop_bound(c) != 0 && errno != EINVAL) {
      return absl::InternalError(absl::StrCat("dropping capability ", c, " from the bounding set: ",
                                              std::strerror(errno)));
    }
  }
  cap_t caps = cap_init();
  if (caps == nullptr) return absl::InternalError("cap_init failed");
  bool ok = cap_set_flag(caps, CAP_PERMITTED, kKeep.size(), kKeep.data(), CAP_SET) == 0 &&
            cap_set_flag(caps, CAP_EFFECTIVE, kKeep.size(), kKeep.data(), CAP_SET) == 0 &&
            cap_set_proc(caps) == 0;
  int e = errno;
  cap_free(caps);
  if (!ok) return absl::InternalError(absl::StrCat("dropping capabilities: ", std::strerror(e)));
  return absl::OkStatus();
}

// `seedsc create` sends one byte on the ready socket once it has recorded
// the sandbox (its state, hooks and pid file), and kills the sandbox itself
// when it fails. A create that went away before either (killed: a test
// run's timeout, a Ctrl-C) leaves a sandbox that no state names and nothing
// would ever end: it ends here, as create's clean-up would have ended it
// (the sentry goes; its zygote and stubs follow by their parent-death
// signal, and pid 1 with the last of them).
void EndUnlessRecorded(int fd, const std::string& id, const std::string& control_addr) {
  char b;
  ssize_t n;
  while ((n = read(fd, &b, 1)) < 0 && errno == EINTR) {
  }
  const int err = errno;
  close(fd);
  // Recorded, or an fd that is no socket (a caller that answers nothing).
  if (n == 1 || (n < 0 && err != ECONNRESET)) return;
  Log::Warning("container %s: `seedsc create` ended before it recorded the sandbox: ending it", id);
  unlink(control_addr.c_str());
  _exit(1);
}

control::ContainerConfig ConfigFor(const std::string& id, const oci::Spec& spec,
                                   const std::string& console_socket) {
  control::ContainerConfig c;
  c.id = id;
  c.init.argv = spec.process.args;
  c.init.envp = spec.process.env;
  oci::AddDefaultHome(spec.root.path, spec.process.user.uid, &c.init.envp);
  c.init.cwd = spec.process.cwd;
  sentry::Credentials& cr = c.init.creds;
  cr = sentry::Credentials::ForUser(spec.process.user.uid, spec.process.user.gid);
  cr.groups = spec.process.user.additional_gids;
  // process.capabilities and noNewPrivileges hold for the guest (the sentry
  // checks them); the init's exec then transforms the sets as runc's execve
  // of the process does.
  const oci::Capabilities& caps = spec.process.capabilities;
  cr.SetCaps(oci::CapabilityMask(caps.bounding), oci::CapabilityMask(caps.effective),
             oci::CapabilityMask(caps.inheritable), oci::CapabilityMask(caps.permitted),
             oci::CapabilityMask(caps.ambient));
  cr.no_new_privs = spec.process.no_new_privileges;
  for (const oci::Rlimit& r : spec.process.rlimits) {
    c.init.rlimits.push_back({r.resource, {r.soft, r.hard}});
  }
  c.terminal = spec.process.terminal;
  c.console_socket = console_socket;
  return c;
}

}  // namespace

int CmdBoot(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("boot");
  std::string bundle, ready_fd = "-1", control_addr, cgroup, console_socket;
  fs.String("bundle", &bundle, "the bundle directory");
  fs.String("ready-fd", &ready_fd, "fd to report \"ok\" or the error on");
  fs.String("control", &control_addr, "unix socket path for the control server");
  fs.String("cgroup", &cgroup, "cgroup path to enter (v1 memory, cpu, pids)");
  fs.String("console-socket", &console_socket, "where to send the pty master");
  std::string host_proc_fd = "-1";
  fs.String("host-proc-fd", &host_proc_fd, "dir fd of the host's /proc");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "boot [flags] ID (internal)", &pos)) return kExitUsage;
  ReadyPipe ready(std::atoi(ready_fd.c_str()));
  const std::string& id = pos[0];
  if (int fd = std::atoi(host_proc_fd.c_str()); fd >= 0) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);  // not for the platform's stubs
    control::SetHostProcFd(fd);
  }

  absl::StatusOr<oci::Spec> spec = oci::LoadBundle(bundle);
  if (!spec.ok()) return ready.Report(std::string(spec.status().message()));
  if (absl::Status s = container::ApplyCgroups(*spec, cgroup, cfg.root); !s.ok()) {
    return ready.Report(std::string(s.message()));
  }
  // --network=none: create made this process's network namespace; its
  // loopback comes up while we still hold CAP_NET_ADMIN, and the guest's
  // sockets are made in it. --network=host: the host's namespace.
  // --network=sandbox: the sandbox's own stack takes over the interfaces,
  // addresses and default routes of the namespace create put us in (the
  // spec's, e.g. one a CNI plugin made), as runsc does; now, while we hold
  // CAP_NET_RAW and CAP_NET_ADMIN.
  std::shared_ptr<std::vector<sentry::TakenInterface>> taken;
  if (cfg.network == "sandbox") {
    absl::StatusOr<std::vector<sentry::TakenInterface>> t = sentry::TakeOverInterfaces();
    if (!t.ok()) {
      return ready.Report(absl::StrCat("taking over the network namespace's interfaces: ",
                                       t.status().message()));
    }
    taken = std::make_shared<std::vector<sentry::TakenInterface>>(std::move(*t));
  } else if (cfg.network != "host") {
    if (int err = sentry::UseOwnNetworkNamespace(); err != 0 && !cfg.rootless) {
      return ready.Report(
          absl::StrCat("bringing up the sandbox's loopback interface: ", std::strerror(err)));
    }
  }
  // A writable bind mount writes through to the host: the sentry's filter
  // and capabilities must allow it (sentry_policy.h). A pod's sandbox
  // container asks for it too, since the pod's later containers may bring
  // volumes and a filter cannot be widened once installed.
  bool host_writes = false;
  for (const oci::Mount& m : spec->mounts) {
    control::MountSpec ms{m.destination, m.type, m.source, m.options};
    if (control::IsBindMount(ms) &&
        std::find(m.options.begin(), m.options.end(), "ro") == m.options.end()) {
      host_writes = true;
    }
  }
  if (auto it = spec->annotations.find(container::kCriContainerType);
      it != spec->annotations.end() && it->second == "sandbox") {
    host_writes = true;
  }
  if (host_writes) seccomp::RequestHostWrites();
  if (!cfg.rootless) {
    if (absl::Status s = DropCapabilities(host_writes); !s.ok()) {
      return ready.Report(std::string(s.message()));
    }
  }
  sentry::KernelOptions opts;
  opts.platform = cfg.platform;
  opts.strace = cfg.strace;
  opts.network = cfg.network;
  opts.taken_interfaces = taken;
  opts.net_raw = cfg.net_raw;
  opts.root = spec->root.path;
  opts.read_only_root = spec->root.readonly;
  opts.pids_limit = spec->resources.pids_limit.value_or(0);
  if (!spec->hostname.empty()) {
    opts.hostname = spec->hostname;
  } else if (char h[256]; gethostname(h, sizeof(h)) == 0) {
    opts.hostname = h;  // no hostname in config.json: the host's, as runc keeps it
  }
  // --systrap-patch reaches the platform as NewSystrapPlatform reads it
  // (SEEDVISOR_SYSTRAP_PATCH), only while the kernel is made: the guest's
  // environment never carries it.
  setenv("SEEDVISOR_SYSTRAP_PATCH", cfg.systrap_patch ? "1" : "0", 1);
  auto kernel = sentry::Kernel::Create(opts);
  unsetenv("SEEDVISOR_SYSTRAP_PATCH");
  if (!kernel.ok()) {
    return ready.Report(absl::StrCat("creating the sandbox: ", kernel.status().message()));
  }
  std::vector<control::MountSpec> mounts;
  for (const oci::Mount& m : spec->mounts) {
    mounts.push_back({m.destination, m.type, m.source, m.options});
  }
  if (absl::Status s = control::ApplyMounts((*kernel)->vfs(), mounts); !s.ok()) {
    return ready.Report(absl::StrCat("config.json: mounts: ", s.message()));
  }
  if (absl::Status s = control::ApplyPathRules((*kernel)->vfs(), spec->readonly_paths,
                                               spec->masked_paths);
      !s.ok()) {
    return ready.Report(absl::StrCat("config.json: ", s.message()));
  }
  control::ContainerConfig ccfg = ConfigFor(id, *spec, console_socket);
  if (auto it = spec->annotations.find(control::kForkSparesAnnotation);
      it != spec->annotations.end()) {
    absl::StatusOr<int> n = control::ParseForkSpares(it->second);
    if (!n.ok()) return ready.Report(absl::StrCat("config.json: ", n.status().message()));
    ccfg.fork_spares = *n;
  }
  if (auto it = spec->annotations.find(control::kForkAheadAnnotation);
      it != spec->annotations.end()) {
    absl::StatusOr<int> n = control::ParseForkAhead(it->second);
    if (!n.ok()) return ready.Report(absl::StrCat("config.json: ", n.status().message()));
    ccfg.fork_ahead = *n;
  }
  // process.terminal: as runc does, the pty master goes to --console-socket
  // during create (containerd reads it while create runs); the init gets
  // the slave at Start.
  if (spec->process.terminal) {
    control::v1::Stdio io;
    io.set_terminal(true);
    io.set_console_socket(console_socket);
    absl::StatusOr<control::HostStdio> t = control::OpenStdio(io, nullptr);
    if (!t.ok()) return ready.Report(absl::StrCat("--console-socket: ", t.status().message()));
    auto tty = std::make_shared<control::HostStdio>(std::move(*t));
    for (int i = 0; i < 3; ++i) ccfg.init.stdio[i] = tty->fds[i];
    ccfg.init_stdio_owner = tty;
    ccfg.terminal = false;
  }
  control::ControlServer control(**kernel, ccfg);
  ttrpc::Server server;
  control.Register(server);
  unlink(control_addr.c_str());  // a stale socket of an earlier boot of this id
  if (absl::Status s = server.Listen(control_addr); !s.ok()) {
    return ready.Report(absl::StrCat("control socket ", control_addr, ": ", s.message()));
  }
  // Test hook: a boot that never becomes ready (test/oci:boot_timeout_test).
  if (unsigned stall = TestStallSeconds("boot"); stall > 0) sleep(stall);
  // The sandbox is set up: from here on (and before any guest code runs) the
  // sentry makes only the host syscalls its policy allows.
  if (int r = seccomp::InstallSentryFilter(); r != 0) {
    return ready.Report(absl::StrCat("installing the sentry's seccomp filter: ", std::strerror(-r)));
  }
  Result<sentry::HostThread> serve = sentry::HostThread::Spawn();
  if (!serve.ok()) {
    return ready.Report(absl::StrCat("the host refused the control server a thread (",
                                     std::strerror(serve.error().value()),
                                     "); the sandbox's host pids cgroup may be full"));
  }
  std::move(*serve).Run([&server] { server.Serve(); });
  Log::Debug("sandbox for container %s is up; control socket %s", id, control_addr);
  if (int fd = ready.ReportOk(absl::StrCat("ok ", control::HostPid())); fd >= 0) {
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    Result<sentry::HostThread> watch = sentry::HostThread::Spawn();
    if (watch.ok()) {
      std::move(*watch).Run([fd, id, control_addr] { EndUnlessRecorded(fd, id, control_addr); });
    } else {
      close(fd);  // create is answered; only its death would go unnoticed
    }
  }

  control.WaitShutdown();
  // Let the Shutdown reply reach the caller before the process goes.
  usleep(20000);
  unlink(control_addr.c_str());
  // The kernel's threads may still be parked: leave them to the exit. The
  // sentry is pid 2 of the sandbox's pid namespace (pid 1 only reaps, see
  // container::CreateSandbox): its zygote and stubs go with it by their
  // parent-death signal (platform/stub/stub_process.cc), and pid 1 ends
  // the namespace once they are gone.
  kernel->release();
  _exit(0);
}

}  // namespace seedvisor::runsc
