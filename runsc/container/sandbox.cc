#include "runsc/container/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <functional>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runsc/container/cgroup.h"
#include "runsc/container/hooks.h"
#include "runsc/container/pod_pid_ns.h"
#include "runsc/container/host_process.h"
#include "runsc/container/leftover.h"
#include "sentry/control/control.pb.h"
#include "sentry/control/server.h"
#include "shim/ttrpc/client.h"

namespace seedvisor::container {
namespace {

// Best effort, where a failure is being undone or the caller does not wait
// for the end (create's clean-up, fork, the FRI daemon): 3 s at the most.
void KillSandboxPid(const ProcessIdentity& p) { EndProcess(p, absl::Seconds(3)).IgnoreError(); }

// Milliseconds left until `deadline` for poll(2): -1 for none, 0 once past.
int PollMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms <= 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

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

// Reads what `seedsc boot` reports on its ready pipe: "ok <its host pid>"
// or an error, until `deadline`.
absl::StatusOr<pid_t> AwaitReady(int fd, pid_t pid, absl::Time deadline, absl::Duration timeout) {
  std::string got;
  char buf[512];
  for (;;) {
    // "ok <pid>\n" is all there is to wait for: the pipe's write end may
    // live on in processes the sentry made.
    if (got.rfind("ok ", 0) == 0 && got.find('\n') != std::string::npos) break;
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, PollMs(deadline));
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
    return absl::InternalError(absl::StrCat("the sandbox process (pid ", pid, ") exited during boot"));
  }
  while (!got.empty() && got.back() == '\n') got.pop_back();
  return absl::InternalError(got);
}

// --pid-file: `pid`, written atomically; nothing for an empty path.
absl::Status WritePidFile(const std::string& path, pid_t pid) {
  if (path.empty()) return absl::OkStatus();
  std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  if (f == nullptr || fprintf(f, "%d", pid) < 0 || fclose(f) != 0 ||
      rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("writing --pid-file ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<oci::Spec> SavedSpec(const std::string& root, const State& st) {
  // The copy of config.json made at create time: the bundle may be gone.
  std::ifstream in(StateDir(root, st.id) + "/config.json");
  if (!in) return absl::NotFoundError(absl::StrCat("container \"", st.id, "\": config.json missing"));
  std::stringstream ss;
  ss << in.rdbuf();
  return oci::ParseSpec(ss.str(), "");
}

namespace {

// <root>/<id> with the saved config.json, and the state's fields that do
// not depend on where the container runs. `*lock` holds the dir's lock
// until the caller is done: a dir without a state whose lock nobody holds
// is a leftover (RemoveLeftover).
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
  std::filesystem::copy_file(o.bundle + "/config.json", StateDir(o.root, o.id) + "/config.json", ec);
  if (ec) {
    RemoveStateDir(o.root, o.id).IgnoreError();
    return absl::InternalError(absl::StrCat("saving config.json: ", ec.message()));
  }
  return st;
}

}  // namespace

absl::StatusOr<std::string> JoinOf(const oci::Spec& spec, const std::string& id) {
  auto type = spec.annotations.find(kCriContainerType);
  if (type == spec.annotations.end() || type->second != "container") return std::string();
  auto sandbox = spec.annotations.find(kCriSandboxId);
  if (sandbox == spec.annotations.end() || sandbox->second.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: annotation ", kCriContainerType,
                                                   " is \"container\" but ", kCriSandboxId,
                                                   " is missing"));
  }
  if (sandbox->second == id) return std::string();
  return sandbox->second;
}

namespace {

// config.json as control's CreateContainer carries it.
control::v1::CreateContainerRequest JoinRequest(const CreateOptions& o, const oci::Spec& spec,
                                                const PidNamespaceChoice& pid_ns) {
  control::v1::CreateContainerRequest r;
  r.set_container_id(o.id);
  r.set_root(spec.root.path);
  r.set_read_only_root(spec.root.readonly);
  for (const oci::Mount& m : spec.mounts) {
    control::v1::Mount* cm = r.add_mounts();
    cm->set_destination(m.destination);
    cm->set_type(m.type);
    cm->set_source(m.source);
    for (const std::string& opt : m.options) cm->add_options(opt);
  }
  for (const std::string& p : spec.readonly_paths) r.add_readonly_paths(p);
  for (const std::string& p : spec.masked_paths) r.add_masked_paths(p);
  const oci::Process& proc = spec.process;
  for (const std::string& a : proc.args) r.add_args(a);
  std::vector<std::string> env = proc.env;
  oci::AddDefaultHome(spec.root.path, proc.user.uid, &env);
  for (const std::string& e : env) r.add_env(e);
  r.set_cwd(proc.cwd);
  r.mutable_user()->set_uid(proc.user.uid);
  r.mutable_user()->set_gid(proc.user.gid);
  for (gid_t g : proc.user.additional_gids) r.mutable_user()->add_additional_gids(g);
  r.set_cap_bounding(oci::CapabilityMask(proc.capabilities.bounding));
  r.set_cap_effective(oci::CapabilityMask(proc.capabilities.effective));
  r.set_cap_inheritable(oci::CapabilityMask(proc.capabilities.inheritable));
  r.set_cap_permitted(oci::CapabilityMask(proc.capabilities.permitted));
  r.set_cap_ambient(oci::CapabilityMask(proc.capabilities.ambient));
  r.set_no_new_privileges(proc.no_new_privileges);
  for (const oci::Rlimit& l : proc.rlimits) {
    control::v1::Rlimit* cl = r.add_rlimits();
    cl->set_resource(l.resource);
    cl->set_soft(l.soft);
    cl->set_hard(l.hard);
  }
  // The init's stdio is this process's (as runc's init inherits create's),
  // opened by the sandbox through the host's /proc while the call runs.
  control::v1::Stdio* io = r.mutable_stdio();
  if (proc.terminal) {
    io->set_terminal(true);
    io->set_console_socket(o.console_socket);
  } else {
    const pid_t self = getpid();
    io->set_stdin(absl::StrCat("/proc/", self, "/fd/0"));
    io->set_stdout(absl::StrCat("/proc/", self, "/fd/1"));
    io->set_stderr(absl::StrCat("/proc/", self, "/fd/2"));
  }
  r.set_caller_pid(getpid());
  // Its own pids limit, kept by the sandbox (sentry/kernel: the host cgroup
  // holds the whole pod's sandbox process, not this container's tasks).
  if (spec.resources.pids_limit) r.set_pids_limit(*spec.resources.pids_limit);
  // linux.namespaces "pid" without a path: a pid namespace of its own (as
  // runc and runsc give it); a path names the pod sandbox's (CRI's POD
  // mode) or another container's (TARGET).
  r.set_own_pid_namespace(pid_ns.own);
  r.set_pid_namespace_of(pid_ns.of);
  return r;
}

// CreateSandbox for a pod's application container: CreateContainer in the
// running sandbox of container `sandbox_id`.
absl::StatusOr<State> JoinSandbox(const CreateOptions& o, const oci::Spec& spec,
                                  const std::string& sandbox_id) {
  absl::StatusOr<State> pod = LoadState(o.root, sandbox_id);
  if (!pod.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "container \"", o.id, "\": its pod's sandbox container \"", sandbox_id, "\" (annotation ",
        kCriSandboxId, "): ", pod.status().message()));
  }
  if (pod->joined()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "container \"", o.id, "\": \"", sandbox_id, "\" (annotation ", kCriSandboxId,
        ") is not a sandbox: it lives in \"", pod->sandbox_id, "\""));
  }
  if (!SandboxAlive(*pod)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "container \"", o.id, "\": its pod's sandbox \"", sandbox_id, "\" is not running"));
  }
  absl::StatusOr<PidNamespaceChoice> pid_ns = PidNamespaceOf(o.root, *pod, spec);
  if (!pid_ns.ok()) return pid_ns.status();
  std::optional<Lock> lock;
  absl::StatusOr<State> made = NewStateDir(o, spec, &lock);
  if (!made.ok()) return made.status();
  State& st = *made;
  st.control_address = pod->control_address;
  st.set_sandbox(pod->sandbox());
  st.sandbox_id = sandbox_id;
  bool joined = false;
  auto undo = [&](absl::Status why) {
    if (joined) {
      control::v1::DeleteContainerRequest req;
      req.set_container_id(o.id);
      control::v1::DeleteContainerResponse resp;
      Call(st, "DeleteContainer", req, &resp, absl::Seconds(15)).IgnoreError();
    }
    RemoveStateDir(o.root, o.id).IgnoreError();
    return why;
  };
  control::v1::CreateContainerResponse resp;
  if (absl::Status s =
          Call(st, "CreateContainer", JoinRequest(o, spec, *pid_ns), &resp, absl::Seconds(30));
      !s.ok()) {
    return undo(absl::Status(s.code(), absl::StrCat("joining the sandbox of \"", sandbox_id,
                                                    "\": ", s.message())));
  }
  joined = true;
  // Outside the sandbox's pid namespace: known by its own host thread.
  absl::StatusOr<pid_t> host_id = ContainerHostId(*pid_ns, st.sandbox_pid, resp.host_thread());
  if (!host_id.ok()) {
    return undo(absl::Status(host_id.status().code(),
                             absl::StrCat("joining the sandbox of \"", sandbox_id,
                                          "\": ", host_id.status().message())));
  }
  st.container_pid = *host_id;
  if (absl::Status s = SaveState(o.root, st); !s.ok()) return undo(s);
  std::string state_json = OciStateJson(st, "created", -1);
  for (auto [kind, hooks] : {std::pair{"prestart", &spec.hooks.prestart},
                             std::pair{"createRuntime", &spec.hooks.create_runtime}}) {
    if (absl::Status s = RunHooks(kind, *hooks, state_json); !s.ok()) return undo(s);
  }
  if (absl::Status s = RunHooks("createContainer", spec.hooks.create_container, state_json,
                                st.sandbox_pid);
      !s.ok()) {
    return undo(s);
  }
  if (absl::Status s = WritePidFile(o.pid_file, st.pid()); !s.ok()) return undo(s);
  return st;
}

}  // namespace

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
    KillSandboxPid(to_kill);
    RemoveCgroups(st.cgroups_path).IgnoreError();
    if (st.control_address.rfind(dir, 0) != 0) unlink(st.control_address.c_str());
    RemoveStateDir(o.root, o.id).IgnoreError();
    return why;
  };
  // The sandbox mounts its own /proc (its pid namespace's: the platform
  // finds its stubs there); it keeps the host's as a dir fd to open stdio
  // paths like /proc/<host pid>/fd/N (seedsc exec's own stdio).
  int host_proc = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (host_proc < 0) return undo(absl::InternalError(absl::StrCat("open /proc: ", std::strerror(errno))));
  int ready[2], pidp[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(pidp, O_CLOEXEC) != 0) {
    return undo(absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno))));
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

  const absl::Time deadline = o.boot_timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + o.boot_timeout;
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
          if (wait(nullptr) < 0 && errno == ECHILD) _exit(0);
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
  while ((pr = poll(&pp, 1, PollMs(deadline))) < 0 && errno == EINTR) {
  }
  if (pr == 0) {
    kill(mid, SIGKILL);
    waitpid(mid, nullptr, WNOHANG);  // not to hang here too: it may never die
    close(pidp[0]);
    close(ready[0]);
    return undo(absl::DeadlineExceededError(absl::StrCat(
        "the sandbox did not come up within ", Seconds(o.boot_timeout),
        " (--boot-timeout): making its namespaces (unshare, pid ", mid, ") never finished; killed it")));
  }
  if (read(pidp[0], &boot_pid, sizeof(boot_pid)) != sizeof(boot_pid)) boot_pid = 0;
  // Not our child (the middle process's): taken before anything can reap it.
  if (absl::StatusOr<ProcessIdentity> b = IdentityOf(boot_pid); b.ok()) to_kill = *b;
  int ws = 0;
  waitpid(mid, &ws, 0);  // it exits right after writing
  close(pidp[0]);
  st.sandbox_pid = boot_pid;
  absl::StatusOr<pid_t> sentry_pid = AwaitReady(ready[0], boot_pid, deadline, o.boot_timeout);
  close(ready[0]);
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
  return st;
}

// Unix socket paths must fit sun_path (108 bytes); long --root dirs (Bazel
// test dirs) get a short path in /tmp named after the state dir instead.
std::string ControlAddressFor(const std::string& state_dir) {
  std::string p = state_dir + "/control.sock";
  if (p.size() < 100) return p;
  return absl::StrFormat("/tmp/seedsc-%016x.sock", std::hash<std::string>()(state_dir));
}

void KillSandbox(const ProcessIdentity& p) { KillSandboxPid(p); }

absl::Status Call(const State& st, const std::string& method,
                  const google::protobuf::MessageLite& req, google::protobuf::MessageLite* resp,
                  absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<ttrpc::Client>> c = ttrpc::Client::Dial(st.control_address);
  if (!c.ok()) {
    return absl::UnavailableError(absl::StrCat("container \"", st.id,
                                               "\": cannot reach its sandbox: ", c.status().message()));
  }
  return (*c)->Call(control::kService, method, req, resp, timeout);
}

std::string LiveStatus(const State& st) {
  if (!SandboxAlive(st)) return "stopped";
  control::v1::StateRequest req;
  req.set_container_id(st.id);
  control::v1::StateResponse resp;
  if (!Call(st, "State", req, &resp, absl::Seconds(5)).ok()) return "stopped";
  return resp.status();
}

absl::Status DestroySandbox(const std::string& root, const State& st) {
  // Whether the container is its sandbox's first is the sandbox's to say:
  // DeleteContainer of the first one fails with FailedPrecondition, and
  // deleting that container ends the sandbox. (A state.json copied from a
  // seed's by hand, as bench/sfork_bench.py did, names the seed's sandbox
  // for a fork, which is the first container of a sandbox of its own.)
  bool joined = st.joined();
  if (joined) {
    // A container in its pod's sandbox: that sandbox forgets it (its
    // processes die); the sandbox, its socket and cgroups stay.
    if (SandboxAlive(st)) {
      control::v1::DeleteContainerRequest req;
      req.set_container_id(st.id);
      control::v1::DeleteContainerResponse resp;
      absl::Status s = Call(st, "DeleteContainer", req, &resp, absl::Seconds(15));
      if (absl::IsFailedPrecondition(s)) {
        joined = false;
      } else if (!s.ok() && !absl::IsNotFound(s) && !absl::IsUnavailable(s)) {
        return s;
      }
    }
  }
  if (!joined) WarnIfSandboxUnknown(st);
  // Its pid namespace's pid 1, found while the sentry (its child) lives:
  // it exits only after the sentry, once it has reaped it.
  absl::StatusOr<ProcessIdentity> ns_init = absl::NotFoundError("");
  if (!joined && SandboxAlive(st)) {
    ns_init = NamespaceInitOf(st.sandbox());
    control::v1::ShutdownRequest req;
    control::v1::ShutdownResponse resp;
    // Shutdown kills the guest and answers once the sandbox's other host
    // processes have exited (a fork's zygote and stubs, every spare: its
    // cgroup holds none of them then); after its reply nothing in the
    // sandbox process is worth waiting for, so SIGKILL ends it at once.
    Call(st, "Shutdown", req, &resp, control::kEndHostProcessesTimeout + absl::Seconds(3))
        .IgnoreError();
    // Gone before delete says so (test/oci: 'delete leaves no sandbox
    // process'). If it is not, the state stays for another delete.
    if (absl::Status s = EndProcess(st.sandbox(), kEndProcessTimeout); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("container \"", st.id, "\": its sandbox's ",
                                                 s.message(), "; delete it again later"));
    }
  }
  // Its own cgroup may still hold stubs that outlived their zygote and
  // sentry (OrphanedStubs): they would keep the cgroup (and a shim) forever.
  if (!joined && !st.cgroups_path.empty()) EndOrphanedStubs(st.cgroups_path);
  // And pid 1 has gone too, unless a fork of the sandbox lives on in its
  // namespace: it carries the command line of the seedsc that made it (it
  // never execs), and `seedsc run` returning while it still runs left a
  // process of the sandbox behind (test/oci:boot_timeout_test under load).
  if (ns_init.ok()) {
    if (absl::Status s = AwaitNamespaceEnd(*ns_init, kEndProcessTimeout); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("container \"", st.id, "\": its sandbox's ",
                                                 s.message(), "; delete it again later"));
    }
  }
  absl::Status result;
  absl::StatusOr<oci::Spec> spec = SavedSpec(root, st);
  if (spec.ok() && !spec->hooks.poststop.empty()) {
    // runtime-spec: a failing poststop hook is only a warning.
    absl::Status s = RunHooks("poststop", spec->hooks.poststop, OciStateJson(st, "stopped", -1));
    if (!s.ok()) fprintf(stderr, "seedsc: warning: %s\n", std::string(s.message()).c_str());
  }
  if (absl::Status s = RemoveCgroups(st.cgroups_path); !s.ok()) result = s;
  if (!joined && st.control_address.rfind(StateDir(root, st.id), 0) != 0) {
    unlink(st.control_address.c_str());
  }
  if (absl::Status s = RemoveStateDir(root, st.id); !s.ok()) result = s;
  return result;
}

}  // namespace seedvisor::container
