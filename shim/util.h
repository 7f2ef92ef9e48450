// Small helpers for the task service: rootfs mounts, the OCI Process JSON of
// Exec requests, timestamps.
//
//   RETURN_IF_ERROR(MountRootfs(req.rootfs(), bundle + "/rootfs"));
//   ASSIGN_OR_RETURN(control::v1::ExecRequest e, ExecFromOciProcess(json));
#ifndef SEEDVISOR_SHIM_UTIL_H_
#define SEEDVISOR_SHIM_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "runsc/oci/spec.h"
#include "sentry/control/control.pb.h"
#include "shim/proto/mount.pb.h"

namespace seedvisor::shim {

// Mounts containerd's rootfs mounts (they have no target) on `target`, in
// order. Options that are mount flags (ro, nosuid, bind, ...) become flags;
// the rest are the data string, e.g. overlay's lowerdir=...
absl::Status MountRootfs(const google::protobuf::RepeatedPtrField<containerd::types::Mount>& m,
                         const std::string& target);
// Lazily unmounts everything on `target` (no error if nothing is mounted).
void UnmountAll(const std::string& target);

// An OCI runtime-spec Process (JSON, as in Exec.spec) → the control Exec
// request fields (args, env, cwd, user, capabilities, no_new_privileges).
absl::StatusOr<seedvisor::control::v1::ExecRequest> ExecFromOciProcess(const std::string& json);

// UpdateTaskRequest.resources → the limits to apply. containerd 1.6 sends
// an OCI LinuxResources marshalled by its typeurl registry: type URL
// kLinuxResourcesTypeUrl, value the JSON object (not protobuf).
inline constexpr char kLinuxResourcesTypeUrl[] =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
absl::StatusOr<oci::Resources> ResourcesFromAny(const google::protobuf::Any& any);

// The cgroup path of `controller` ("memory") in a /proc/<pid>/cgroup text
// ("4:memory:/default/c1" → "/default/c1"), or "" when it is not listed.
std::string CgroupOfController(const std::string& proc_cgroup, const std::string& controller);

google::protobuf::Timestamp TimestampFromUnixNanos(int64_t ns);
google::protobuf::Timestamp Now();

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_UTIL_H_
