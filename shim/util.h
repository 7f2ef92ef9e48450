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
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"
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

google::protobuf::Timestamp TimestampFromUnixNanos(int64_t ns);
google::protobuf::Timestamp Now();

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_UTIL_H_
