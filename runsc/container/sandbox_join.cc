// A pod's application container (JoinOf): no sandbox of its own, but a
// container made in its pod's running one (control CreateContainer), as
// runsc does.
#include <unistd.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runsc/container/cgroup.h"
#include "runsc/container/hooks.h"
#include "runsc/container/pod_pid_ns.h"
#include "runsc/container/sandbox.h"
#include "runsc/container/sandbox_internal.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::container {

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
                                                const PidNamespaceChoice& pid_ns,
                                                const std::string& cgroup) {
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
  r.set_cgroup(cgroup);
  return r;
}

}  // namespace

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
    RemoveCgroups(st.cgroups_path, o.root).IgnoreError();
    RemoveStateDir(o.root, o.id).IgnoreError();
    return why;
  };
  // Its own cgroups with its linux.resources, as runc makes them: the
  // sandbox puts the host processes that hold its processes' memory (their
  // stubs) there, so the host keeps its memory and cpu limits and OOM-kills
  // it alone (sentry/kernel/host_cgroups.h). Its pids limit is the
  // sandbox's to keep (set_pids_limit above).
  st.cgroups_path = CgroupPathFor(spec, o.id);
  if (absl::Status s = CreateCgroups(spec, st.cgroups_path, o.root); !s.ok()) {
    st.cgroups_path.clear();  // CreateCgroups removed what it made
    return undo(absl::Status(s.code(), absl::StrCat("container \"", o.id, "\": ", s.message())));
  }
  control::v1::CreateContainerResponse resp;
  if (absl::Status s = Call(st, "CreateContainer", JoinRequest(o, spec, *pid_ns, st.cgroups_path),
                            &resp, absl::Seconds(30));
      !s.ok()) {
    return undo(absl::Status(s.code(), absl::StrCat("joining the sandbox of \"", sandbox_id,
                                                    "\": ", s.message())));
  }
  joined = true;
  if (!resp.host_cgroup() && !st.cgroups_path.empty()) {
    // A sandbox that keeps guest memory in the sentry (kvm), or one older
    // than the field: the pod's cgroup holds this container's processes,
    // and an update of its memory or cpu is refused (ApplyUpdate).
    RemoveCgroups(st.cgroups_path, o.root).IgnoreError();
    st.cgroups_path.clear();
  }
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

}  // namespace seedvisor::container
