#include "runsc/container/sandbox.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runsc/container/cgroup.h"
#include "runsc/container/hooks.h"
#include "runsc/container/host_process.h"
#include "runsc/container/leftover.h"
#include "sentry/control/control.pb.h"
#include "sentry/control/server.h"
#include "shim/ttrpc/client.h"

namespace seedvisor::container {

absl::StatusOr<oci::Spec> SavedSpec(const std::string& root, const State& st) {
  // The copy of config.json made at create time: the bundle may be gone.
  std::ifstream in(StateDir(root, st.id) + "/config.json");
  if (!in) {
    return absl::NotFoundError(absl::StrCat("container \"", st.id, "\": config.json missing"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return oci::ParseSpec(ss.str(), "");
}

// Unix socket paths must fit sun_path (108 bytes); long --root dirs (Bazel
// test dirs) get a short path in /tmp named after the state dir instead.
std::string ControlAddressFor(const std::string& state_dir) {
  std::string p = state_dir + "/control.sock";
  if (p.size() < 100) return p;
  return absl::StrFormat("/tmp/seedsc-%016x.sock", std::hash<std::string>()(state_dir));
}

// Best effort, where a failure is being undone or the caller does not wait
// for the end (create's clean-up, fork, the FRI daemon): 3 s at the most.
void KillSandbox(const ProcessIdentity& p) { EndProcess(p, absl::Seconds(3)).IgnoreError(); }

absl::Status Call(const State& st, const std::string& method,
                  const google::protobuf::MessageLite& req, google::protobuf::MessageLite* resp,
                  absl::Duration timeout, const std::vector<int>& fds) {
  absl::StatusOr<std::unique_ptr<ttrpc::Client>> c = ttrpc::Client::Dial(st.control_address);
  if (!c.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "container \"", st.id, "\": cannot reach its sandbox: ", c.status().message()));
  }
  return (*c)->Call(control::kService, method, req, resp, timeout, {}, fds);
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
  if (absl::Status s = RemoveCgroups(st.cgroups_path, root); !s.ok()) result = s;
  if (!joined && st.control_address.rfind(StateDir(root, st.id), 0) != 0) {
    unlink(st.control_address.c_str());
  }
  if (absl::Status s = RemoveStateDir(root, st.id); !s.ok()) result = s;
  return result;
}

}  // namespace seedvisor::container
