// Runtime options from containerd's CRI config: the seedsc flags of one
// runtime handler, so a node can offer `seedsc` and `seedsc-kvm` side by side.
//
//   [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.seedsc.options]
//     TypeUrl = "io.containerd.seedsc.v1.options"
//     ConfigPath = "/etc/containerd/seedsc.toml"
//
// containerd 1.6 sends that table with every Create as a
// runtimeoptions.v1.Options (CreateTaskRequest.options). The file at
// ConfigPath holds seedsc's global flags in a [seedsc_config] table:
//
//   [seedsc_config]
//     platform = "kvm"        # --platform=kvm
//     network = "sandbox"     # --network=sandbox
//     net-raw = true          # --net-raw=true
//
// Only that table, `key = "string"`, `key = true|false`, `key = 123` and
// comments are read: anything else is an error naming the file and line.
#ifndef SEEDVISOR_SHIM_RUNTIME_OPTIONS_H_
#define SEEDVISOR_SHIM_RUNTIME_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/any.pb.h"

namespace seedvisor::shim {

// The seedsc flags of `options` (none without options or a ConfigPath);
// errors name the config file and what was wrong in it.
absl::StatusOr<std::vector<std::string>> FlagsFromRuntimeOptions(
    const google::protobuf::Any& options);

// The flags of a seedsc.toml's text; `path` is for the error messages.
absl::StatusOr<std::vector<std::string>> ParseSeedscToml(absl::string_view text,
                                                        absl::string_view path);

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_RUNTIME_OPTIONS_H_
