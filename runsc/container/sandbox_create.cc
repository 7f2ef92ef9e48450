// CreateSandbox: a sandbox of its own, `seedsc boot` started in new
// namespaces (its pid namespace's pid 1 reaps, the sentry is pid 2), its
// state recorded once it reports ready, its create hooks run; all of it
// undone on any failure, and by the sandbox itself when this process goes
// away before it has recorded it (the ready socket, cmd_boot.cc).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runsc/container/cgroup.h"
#include "runsc/container/hooks.h"
#include "runsc/container/host_process.h"
#include "runsc/container/sandbox.h"
#include "runsc/container/sandbox_internal.h"
#include "sentry/base/deadline.h"

namespace seedvisor::container {
namespace {

// "60s" as the flag would say it.
std::string Seconds(absl::Duration d) { return absl::FormatDuration(d); }

// What the sandbox's sentry was doing, for the deadline's message: the
// first child of `reaper` (the pid namespace's pid 1). Best effort: "" if
// /proc does not say.
std::string SentryState(pid_t reaper) {
  std::ifstream children(absl::StrCat("/proc/", reaper, "/task/", reaper, "/children"));
  pid_t sentry = 0;
  if (!(children >> sentry) || sentry <= 0) return "";
  const std::string what = DescribeProcess(sentry);
  return what.empty() ? "" : absl::StrCat(" (its sentry, host pid ", sentry, ": ", what, ")");
}

// Reads what `seedsc boot` reports on its ready socket: "ok <its host pid>"
// or an error, until `deadline`.
absl::StatusOr<pid_t> AwaitReady(int fd, pid_t pid, sentry::Deadline deadline, absl::Duration timeout) {
  std::string got;
  char buf[512];
  for (;;) {
    // "ok <pid>\n" is all there is to wait for: the pipe's write end may
    // live on in processes the sentry made.
    if (got.rfind("ok ", 0) == 0 && got.find('\n') != std::string::npos) break;
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, deadline.PollMs());
    if (r == 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the sandbox did not come up within ", Seconds(timeout),
          " (--boot-timeout): `seedsc boot` (sandbox pid ", pid, ") never reported ready",
          SentryState(pid), "; killed it"));
    }
    if (r < 0 && errno == EINTR) continue;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.append(buf, n);
  }
  if (got.rfind("ok ", 0) == 0) {
    pid_t sentry = static_cast<pid_t>(atoi(got.c_str() + 3));
    if (sentry > 0) return sentry;
  }
  if (got.empty()) {
    return absl::InternalError(
        absl::StrCat("the sandbox process (pid ", pid, ") exited during boot"));
  }
  while (!got.empty() && got.back() == '\n') got.pop_back();
  return absl::InternalError(got);
}

}  // namespace

absl::StatusOr<State> NewStateDir(const CreateOptions& o, const oci::Spec& spec,
                                  std::optional<Lock>* lock) {
  absl::StatusOr<Lock> locked = Lock::CreateDir(o.root, o.id);
  if (!locked.ok()) return locked.status();
  lock->emplace(std::move(*locked));
  State st;
  st.id = o.id;
  st.bundle = o.bundle;
  st.created = NowRfc3339();
  st.rootfs = spec.root.path;
  st.annotations = spec.annotations;
  st.oci_version = spec.oci_version;
  std::error_code ec;
  std::filesystem::copy_file(o.bundle + "/config.json", StateDir(o.root, o.id) + "/config.json",
                             ec);
  if (ec) {
    RemoveStateDir(o.root, o.id).IgnoreError();
    return absl::InternalError(absl::StrCat("saving config.json: ", ec.message()));
  }
  return st;
}

absl::Status WritePidFile(const std::string& path, pid_t pid) {
  if (path.empty()) return absl::OkStatus();
  std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  if (f == nullptr || fprintf(f, "%d", pid) < 0 || fclose(f) != 0 ||
      rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("writing --pid-file ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<State> CreateSandbox(const CreateOptions& o) {
  if (absl::Status s = ValidateId(o.id); !s.ok()) return s;
  absl::StatusOr<oci::Spec> spec = oci::LoadBundle(o.bundle);
  if (!spec.ok()) return spec.status();
  if (spec->process.terminal && o.console_socket.empty()) {
    return absl::InvalidArgumentError(
        "config.json: process.terminal: is true but --console-socket was not given");
  }
  absl::StatusOr<std::string> join = JoinOf(*spec, o.id);
  if (!join.ok()) return join.status();
  if (!join->empty()) return JoinSandbox(o, *spec, *join);
  std::optional<Lock> lock;
  absl::StatusOr<State> made = NewStateDir(o, *spec, &lock);
  if (!made.ok()) return made.status();
  State& st = *made;
  std::string dir = StateDir(o.root, o.id);
  st.control_address = ControlAddressFor(dir);
  st.cgroups_path = CgroupPathFor(*spec, o.id);
  pid_t boot_pid = 0;
  ProcessIdentity to_kill;  // the namespace's pid 1, then the sentry
  auto undo = [&](absl::Status why) {
    KillSandbox(to_kill);
    RemoveCgroups(st.cgroups_path, o.root).IgnoreError();
    if (st.control_address.rfind(dir, 0) != 0) unlink(st.control_address.c_str());
    RemoveStateDir(o.root, o.id).IgnoreError();
    return why;
  };
  // The sandbox mounts its own /proc (its pid namespace's: the platform
  // finds its stubs there); it keeps the host's as a dir fd to open stdio
  // paths like /proc/<host pid>/fd/N (seedsc exec's own stdio).
  int host_proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (host_proc < 0) {
    return undo(absl::InternalError(absl::StrCat("open /proc: ", std::strerror(errno))));
  }
  // ready: `seedsc boot` reports on it, and waits on it until the sandbox
  // is recorded (one byte back, below); pidp: the middle process's report.
  int ready[2], pidp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ready) != 0 ||
      pipe2(pidp, O_CLOEXEC) != 0) {
    return undo(absl::InternalError(absl::StrCat("socketpair, pipe: ", std::strerror(errno))));
  }
  std::vector<std::string> args = {"seedsc"};
  args.insert(args.end(), o.global_flags.begin(), o.global_flags.end());
  for (const std::string& a :
       {std::string("boot"), "--bundle=" + o.bundle, absl::StrCat("--ready-fd=", ready[1]),
        "--control=" + st.control_address, "--cgroup=" + st.cgroups_path,
        "--console-socket=" + o.console_socket, absl::StrCat("--host-proc-fd=", host_proc),
        o.id}) {
    args.push_back(a);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int ns = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  if (!o.host_network) ns |= CLONE_NEWNET;
  // --network=sandbox with a namespace path in the spec (made by the caller
  // or a CNI plugin, holding the container's veth): join it, as runsc does.
  int netns_fd = -1;
  if (o.sandbox_network) {
    for (const oci::Namespace& n : spec->namespaces) {
      if (n.type != "network" || n.path.empty()) continue;
      netns_fd = open(n.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (netns_fd < 0) {
        return undo(absl::InvalidArgumentError(absl::StrCat(
            "config.json: linux.namespaces: network path ", n.path, ": ", std::strerror(errno))));
      }
      ns &= ~CLONE_NEWNET;
    }
  }

  // Monotonic (issue 10): a wall-clock step must not end or stretch the boot.
  // The sandbox's pid 1 removes its cgroups once the last process in it is
  // gone: a create that was killed before it recorded the sandbox leaves
  // no state for `delete` to find them by (delete removes them too). It
  // becomes `seedsc release-cgroups`, which reads the record of what seedsc
  // made under --root (no allocation here between fork and exec).
  std::vector<std::string> release_args = {"seedsc", "--root=" + o.root, "release-cgroups",
                                           st.cgroups_path};
  std::vector<char*> release_argv;
  for (auto& a : release_args) release_argv.push_back(a.data());
  release_argv.push_back(nullptr);
  const sentry::Deadline deadline = sentry::Deadline::In(o.boot_timeout);
  pid_t mid = fork();
  if (mid < 0) return undo(absl::InternalError(absl::StrCat("fork: ", std::strerror(errno))));
  if (mid == 0) {
    // Between fork and exec: no allocation, only system calls.
    setsid();
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) {
      dprintf(ready[1], "joining the spec's network namespace: %s\n", std::strerror(errno));
      _exit(1);
    }
    if (unshare(ns) != 0) {
      dprintf(ready[1], "creating the sandbox's namespaces: %s\n", std::strerror(errno));
      _exit(1);
    }
    pid_t boot = fork();  // pid 1 of the new pid namespace
    if (boot == 0) {
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
      if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
        dprintf(ready[1], "mounting the sandbox's /proc: %s\n", std::strerror(errno));
        _exit(1);
      }
      // pid 1 only reaps; the sentry is pid 2. Sandboxes forked from this
      // one (sentry/sfork) live in this pid namespace too, and a namespace
      // ends with its pid 1: so pid 1 stays until the last process in it
      // is gone, and destroying this sandbox kills its sentry, not pid 1.
      pid_t sentry = fork();
      if (sentry < 0) {
        dprintf(ready[1], "forking the sandbox's sentry: %s\n", std::strerror(errno));
        _exit(1);
      }
      if (sentry > 0) {
        syscall(SYS_close_range, 0, ~0U, 0);
        for (;;) {
          if (wait(nullptr) < 0 && errno == ECHILD) {
            if (st.cgroups_path.empty()) _exit(0);
            // stdio on /dev/null: the record's files never get fds 0-2.
            for (int fd = 0; fd < 3; ++fd) open("/dev/null", O_RDWR);
            execv("/proc/self/exe", release_argv.data());
            _exit(127);
          }
        }
      }
      fcntl(ready[1], F_SETFD, 0);
      fcntl(host_proc, F_SETFD, 0);
      execv("/proc/self/exe", argv.data());
      dprintf(ready[1], "exec /proc/self/exe: %s\n", std::strerror(errno));
      _exit(127);
    }
    if (write(pidp[1], &boot, sizeof(boot)) != sizeof(boot)) _exit(1);
    _exit(boot > 0 ? 0 : 1);
  }
  close(ready[1]);
  close(pidp[1]);
  close(host_proc);
  if (netns_fd >= 0) close(netns_fd);
  // The middle process makes the namespaces (unshare can wait in the host
  // kernel: a network namespace still being torn down) and forks pid 1.
  pollfd pp{pidp[0], POLLIN, 0};
  int pr;
  while ((pr = poll(&pp, 1, deadline.PollMs())) < 0 && errno == EINTR) {
  }
  if (pr == 0) {
    kill(mid, SIGKILL);
    waitpid(mid, nullptr, WNOHANG);  // not to hang here too: it may never die
    close(pidp[0]);
    close(ready[0]);
    return undo(absl::DeadlineExceededError(absl::StrCat(
        "the sandbox did not come up within ", Seconds(o.boot_timeout),
        " (--boot-timeout): making its namespaces (unshare, pid ", mid,
        ") never finished; killed it")));
  }
  if (read(pidp[0], &boot_pid, sizeof(boot_pid)) != sizeof(boot_pid)) boot_pid = 0;
  // Not our child (the middle process's): taken before anything can reap it.
  if (absl::StatusOr<ProcessIdentity> b = IdentityOf(boot_pid); b.ok()) to_kill = *b;
  int ws = 0;
  waitpid(mid, &ws, 0);  // it exits right after writing
  close(pidp[0]);
  st.sandbox_pid = boot_pid;
  absl::StatusOr<pid_t> sentry_pid = AwaitReady(ready[0], boot_pid, deadline, o.boot_timeout);
  // Closed on every return: without the byte that says "recorded" (a
  // failure below, undone here, or this process killed: a test run's
  // timeout, a Ctrl-C) the sandbox ends itself; nothing else would, as no
  // state names it.
  struct ClosedOnReturn {
    int fd;
    ~ClosedOnReturn() { close(fd); }
  } recorded{ready[0]};
  if (!sentry_pid.ok()) return undo(sentry_pid.status());
  // The sandbox process is the sentry (pid 2 inside); killing it ends the
  // sandbox, and the namespace's pid 1 follows once nothing is left. Who it
  // is goes into the state, for every later signal to it (issue 16).
  absl::StatusOr<ProcessIdentity> sentry = IdentityOf(*sentry_pid);
  if (!sentry.ok()) {
    return undo(absl::InternalError(absl::StrCat(
        "the sandbox's sentry (host pid ", *sentry_pid, ") exited as it reported ready")));
  }
  st.set_sandbox(*sentry);
  to_kill = *sentry;
  boot_pid = *sentry_pid;
  if (absl::Status s = SaveState(o.root, st); !s.ok()) return undo(s);

  std::string state_json = OciStateJson(st, "created", -1);
  for (auto [kind, hooks] : {std::pair{"prestart", &spec->hooks.prestart},
                             std::pair{"createRuntime", &spec->hooks.create_runtime}}) {
    if (absl::Status s = RunHooks(kind, *hooks, state_json); !s.ok()) return undo(s);
  }
  // createContainer: in the container's namespaces, which for a sandbox are
  // those of the sandbox process (runtime-spec config.md, POSIX hooks).
  if (absl::Status s = RunHooks("createContainer", spec->hooks.create_container, state_json,
                                boot_pid);
      !s.ok()) {
    return undo(s);
  }
  if (absl::Status s = WritePidFile(o.pid_file, boot_pid); !s.ok()) return undo(s);
  // Recorded: the sandbox stops waiting on its creator. A send that fails
  // found its sentry gone already: the state says "stopped" from now on.
  (void)send(recorded.fd, "1", 1, MSG_NOSIGNAL);
  return st;
}

}  // namespace seedvisor::container
