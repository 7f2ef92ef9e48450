// A container's on-disk record under --root: <root>/<id>/state.json (what
// `create` made and every later seedsc process reads), next to the sandbox's
// control socket. The live status comes from the sandbox, not from here.
//
//   SV: absl::StatusOr<container::State> st = container::LoadState(root, id);
//   if (!st.ok()) ...  // NotFound: "container \"x\" does not exist"
//   std::string status = container::LiveStatus(*st);  // "running", ...
#ifndef SEEDVISOR_RUNSC_CONTAINER_STATE_H_
#define SEEDVISOR_RUNSC_CONTAINER_STATE_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runsc/container/host_process.h"

namespace seedvisor::container {

struct State {
  std::string oci_version = "1.0.2";
  std::string id;
  std::string bundle;
  pid_t sandbox_pid = 0;          // host pid of the sandbox's sentry (`seedsc boot`)
  // Who sandbox_pid was when it was recorded (host_process.h): 0 and ""
  // in a state.json written before seedsc recorded them.
  uint64_t sandbox_start_time = 0;
  std::string sandbox_boot_id;
  std::string created;            // RFC 3339, UTC
  std::string owner;              // "" as runc prints for root
  std::string control_address;    // unix socket path of the control server
  std::string cgroups_path;       // linux.cgroupsPath, for delete to remove
  std::string rootfs;             // spec root.path (absolute)
  // The sandbox it lives in: its own id, or, for a pod's application
  // container that joined its pod's sandbox (JoinOf in sandbox.h), the
  // pod sandbox container's id; control_address and sandbox_pid are then
  // that sandbox's.
  std::string sandbox_id;
  bool joined() const { return !sandbox_id.empty() && sandbox_id != id; }
  // The host id reported as this container's pid (`state`, `list`,
  // --pid-file) when it is not sandbox_pid: a joined container outside the
  // sandbox's pid namespace has a host thread of the sandbox process of
  // its own (control.proto, CreateContainerResponse.host_thread). 0: none.
  pid_t container_pid = 0;
  pid_t pid() const { return container_pid > 0 ? container_pid : sandbox_pid; }
  ProcessIdentity sandbox() const {
    return {.pid = sandbox_pid, .start_time = sandbox_start_time, .boot_id = sandbox_boot_id};
  }
  void set_sandbox(const ProcessIdentity& p) {
    sandbox_pid = p.pid;
    sandbox_start_time = p.start_time;
    sandbox_boot_id = p.boot_id;
  }
  std::map<std::string, std::string> annotations;
};

// "container ids may contain [A-Za-z0-9_.-]", as runc checks.
absl::Status ValidateId(const std::string& id);
std::string StateDir(const std::string& root, const std::string& id);

absl::Status SaveState(const std::string& root, const State& st);  // atomic
absl::StatusOr<State> LoadState(const std::string& root, const std::string& id);
// Removes <root>/<id> and everything in it.
absl::Status RemoveStateDir(const std::string& root, const std::string& id);
// Ids with a state dir, sorted.
std::vector<std::string> ListIds(const std::string& root);

// An exclusive flock on <root>/<id>: serializes create/start/delete of one
// container between seedsc processes. Released by the destructor.
class Lock {
 public:
  static absl::StatusOr<Lock> Acquire(const std::string& root, const std::string& id);
  // Creates <root>/<id> (and <root>), already locked: AlreadyExists if it
  // is there. Every new container's dir is made so (create, fork, seedd's
  // Fork): a dir without a state whose lock nobody holds is a leftover
  // that `seedsc delete ID` removes (RemoveLeftover), so the dir never
  // shows under its id unlocked. It is made under a temporary name in
  // <root> (".new.XXXXXX", a valid id: a leftover of one goes like any
  // other), locked, and renamed to <id> with RENAME_NOREPLACE (or, on a
  // file system without it, with rename(2) after a check, both under a
  // flock of <root>).
  static absl::StatusOr<Lock> CreateDir(const std::string& root, const std::string& id);
  Lock(Lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~Lock();

 private:
  explicit Lock(int fd) : fd_(fd) {}
  int fd_;
};

// Test only: CreateDir calls `hook` with the temporary dir's name after
// making it and before locking it (nullptr: none).
void SetCreateDirHookForTest(std::function<void(const std::string& name)> hook);
// Test only: while `on`, CreateDir acts as on a file system without
// RENAME_NOREPLACE (renameat2 fails with EINVAL) and calls `before_rename`
// (if set) under its fallback's lock, between its check and its rename.
void SimulateNoRenameNoReplaceForTest(bool on, std::function<void()> before_rename = nullptr);

// The OCI state JSON (runtime-spec "state"), as `runsc state` prints it.
std::string OciStateJson(const State& st, const std::string& status, int indent);

// True if the sandbox's process still exists, is not a zombie and is the
// one `st` recorded (not another that got its pid).
bool SandboxAlive(const State& st);

std::string NowRfc3339();

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_STATE_H_
