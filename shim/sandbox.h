// One sandbox, as the shim sees it: started once with `seedsc create` (the
// only runtime exec on the create path) or forked from a seedd seed
// (seed_fork.h, no exec at all), then driven over its control socket
// (<root>/<id>/control.sock, sentry/control/control.proto) for start, exec,
// signals, wait, state, processes, stats, pause and resume.
//
//   SandboxConfig cfg = SandboxConfig::FromEnv(ns);
//   ASSIGN_OR_RETURN(auto sb, Sandbox::Create(cfg, id, bundle, devnull_fds));
//   control::v1::StartResponse r;
//   RETURN_IF_ERROR(sb->Call("Start", req, &r));
//   ...
//   sb->Destroy();   // Shutdown over the socket, reap, remove the state
#ifndef SEEDVISOR_SHIM_SANDBOX_H_
#define SEEDVISOR_SHIM_SANDBOX_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"
#include "runsc/container/host_process.h"
#include "shim/ttrpc/client.h"

namespace seedvisor::shim {

struct SandboxConfig {
  std::string seedsc;               // the seedsc binary
  std::string root;                 // seedsc --root
  std::vector<std::string> flags;   // extra global flags (--platform=..., --debug ...)
  std::string ns;                   // containerd namespace
  // seedd, for containers forked from its seeds (shim/seed_fork.h).
  std::string seedd_state_dir;      // its --state-dir (holds fri.address)
  std::string seedd_fri_address;    // its FRI socket; "" = read <seedd_state_dir>/fri.address

  // From the environment containerd passes on:
  //   SEEDSC_BINARY  (default: "seedsc" beside the shim binary, else on $PATH)
  //   SEEDSC_ROOT    (default /run/containerd/seedsc/<ns>)
  //   SEEDSC_FLAGS   (space-separated global flags)
  //   SEEDD_STATE_DIR    (default /run/seedd, seedd's default --state-dir)
  //   SEEDD_FRI_ADDRESS  (default: the path in $SEEDD_STATE_DIR/fri.address)
  static SandboxConfig FromEnv(const std::string& ns);
  // The seedsc global arguments: binary path, --root, flags.
  std::vector<std::string> Argv() const;
};

class Sandbox {
 public:
  // Runs `seedsc create --bundle B --pid-file B/init.pid ID` and connects to
  // the control socket. The error carries seedsc's stderr.
  // console_socket: for a terminal init (seedsc create --console-socket).
  static absl::StatusOr<std::unique_ptr<Sandbox>> Create(const SandboxConfig& cfg,
                                                        const std::string& id,
                                                        const std::string& bundle,
                                                        const std::string& console_socket);

  // A sandbox made by an FRI Fork (shim/seed_fork.h), serving the control
  // protocol on `control_address`: Destroy closes the connection and calls
  // `release` (seedd's Destroy) instead of `seedsc delete`.
  static absl::StatusOr<std::unique_ptr<Sandbox>> Adopt(const std::string& id, pid_t pid,
                                                       const std::string& control_address,
                                                       std::function<void()> release);

  // Calls /seedvisor.control.v1.Control/<method>.
  absl::Status Call(const std::string& method, const google::protobuf::MessageLite& req,
                    google::protobuf::MessageLite* resp,
                    absl::Duration timeout = absl::ZeroDuration());

  pid_t pid() const { return pid_; }  // host pid of the sandbox process
  const std::string& id() const { return id_; }
  // Forked from a seed (Adopt): already started, paused until Resume.
  bool forked() const { return release_ != nullptr; }
  // A pod's application container in its pod's sandbox (seedsc create
  // joined it): pid() is that sandbox's process, shared with the pod, or,
  // for one outside the sandbox's pid namespace, a host thread of it that
  // names this container alone (runsc/container/pod_pid_ns.h).
  bool joined() const { return joined_; }
  // A joined container's own cgroups (state.json's cgroupsPath: seedsc
  // create made them and the sandbox keeps its processes' stubs there);
  // "" for others, and for a joined one whose memory is the sandbox's
  // (kvm).
  const std::string& joined_cgroup() const { return joined_cgroup_; }
  // False once the control connection has closed (the sandbox process is
  // gone: nothing in it runs any more) or Destroy has run.
  bool alive();

  // Shutdown over the control socket (kills what is left), SIGKILL of the
  // sandbox process (it only lingers to send the reply) and a wait for it,
  // then `seedsc delete --force` for its state dir and cgroups. Idempotent
  // and thread-safe.
  void Destroy();

 private:
  Sandbox() = default;

  SandboxConfig cfg_;
  std::string id_;
  pid_t pid_ = 0;
  container::ProcessIdentity process_;  // who pid_ is (Create; pid 0 = unknown)
  std::function<void()> release_;  // set by Adopt
  bool joined_ = false;
  std::string joined_cgroup_;
  absl::Mutex mu_;
  // Shared with calls in flight (Wait blocks for long) when Destroy drops it.
  std::shared_ptr<ttrpc::Client> client_ ABSL_GUARDED_BY(mu_);
  bool destroyed_ ABSL_GUARDED_BY(mu_) = false;
};

// `seedsc delete --force ID` (used by the shim's delete subcommand too).
absl::Status ForceDelete(const SandboxConfig& cfg, const std::string& id);

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_SANDBOX_H_
