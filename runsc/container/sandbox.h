// The runtime side of a sandbox: starting `seedsc boot` in its own
// namespaces (create), talking to its control server, and taking it all down
// again (delete). Shared by the seedsc commands.
//
//   CreateOptions o{.root = cfg.root, .id = id, .bundle = b};
//   absl::StatusOr<container::State> st = container::CreateSandbox(o, boot_argv);
//   control::v1::StateResponse resp;
//   RETURN_IF_ERROR(container::Call(*st, "State", req, &resp));
//   container::DestroySandbox(cfg.root, *st);    // no process, cgroup or dir left
#ifndef SEEDVISOR_RUNSC_CONTAINER_SANDBOX_H_
#define SEEDVISOR_RUNSC_CONTAINER_SANDBOX_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"
#include "runsc/container/state.h"
#include "runsc/oci/spec.h"

namespace seedvisor::container {

struct CreateOptions {
  std::string root;
  std::string id;
  std::string bundle;          // absolute
  std::string console_socket;
  std::string pid_file;
  bool host_network = false;   // --network=host: no new net namespace
  // --network=sandbox: the sandbox process joins the spec's network
  // namespace (linux.namespaces "network" with a path) instead of making
  // one, and its stack takes that namespace's interfaces over.
  bool sandbox_network = false;
  // seedsc's global flags to pass on to `seedsc boot` (before "boot").
  std::vector<std::string> global_flags;
  // How long the sandbox may take to come up (its namespaces made, the
  // sentry reporting ready): --boot-timeout. Past it, create fails with
  // one line naming what it waited for and undoes everything.
  absl::Duration boot_timeout = absl::Seconds(60);
};

// Validates the bundle, makes <root>/<id>, starts the sandbox, waits until
// its control server answers (at most o.boot_timeout), records state.json
// and runs the prestart and createRuntime hooks. Any failure undoes all of
// it: no process, cgroup, socket or state directory is left.
// A pod's application container (JoinOf) starts no sandbox: it joins its
// pod's running one (control CreateContainer), as runsc does.
absl::StatusOr<State> CreateSandbox(const CreateOptions& o);

// The CRI annotations (containerd's, as runsc reads them) that make a
// container join a running sandbox instead of booting its own.
inline constexpr const char kCriContainerType[] = "io.kubernetes.cri.container-type";
inline constexpr const char kCriSandboxId[] = "io.kubernetes.cri.sandbox-id";
// The id of the sandbox container `spec` (container `id`) joins: the
// sandbox-id annotation when container-type is "container" and the id is
// another's; "" = a sandbox of its own. InvalidArgument when type
// "container" comes without a sandbox id.
absl::StatusOr<std::string> JoinOf(const oci::Spec& spec, const std::string& id);

// Calls control method `method` on the sandbox of `st`.
// Where a container whose state lives in `state_dir` serves its control
// socket (a short /tmp path when the state dir is too deep for sun_path).
std::string ControlAddressFor(const std::string& state_dir);
// SIGKILLs a sandbox process (if alive, and still the one `p` names) and
// waits up to 3 s for it to go.
void KillSandbox(const ProcessIdentity& p);

// `fds` go with the request (ttrpc::Client::Call).
absl::Status Call(const State& st, const std::string& method,
                  const google::protobuf::MessageLite& req, google::protobuf::MessageLite* resp,
                  absl::Duration timeout = absl::ZeroDuration(),
                  const std::vector<int>& fds = {});

// "created", "running", "paused" or "stopped" (also when the sandbox is gone).
std::string LiveStatus(const State& st);

// Shuts the sandbox down (Shutdown, then SIGKILL if it lingers), runs the
// poststop hooks, removes its cgroups and its state dir.
absl::Status DestroySandbox(const std::string& root, const State& st);

// The config.json saved in the state dir at create time.
absl::StatusOr<oci::Spec> SavedSpec(const std::string& root, const State& st);

}  // namespace seedvisor::container

#endif  // SEEDVISOR_RUNSC_CONTAINER_SANDBOX_H_
