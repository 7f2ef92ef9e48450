// The OCI runtime spec (config.json) as seedsc uses it: parsed, checked, and
// with every error naming the field ("config.json: process.args: must not be
// empty").
//
//   absl::StatusOr<oci::Spec> spec = oci::LoadBundle("/path/to/bundle");
//   if (!spec.ok()) { ...print spec.status().message()... }
//   spec->root.path;   // absolute: the bundle's rootfs
//
// Only what the runtime-spec 1.0 "linux" platform defines is read; unknown
// fields are ignored, as runc ignores them.
#ifndef SEEDVISOR_RUNSC_OCI_SPEC_H_
#define SEEDVISOR_RUNSC_OCI_SPEC_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace seedvisor::oci {

struct Rlimit {
  int resource = 0;  // RLIMIT_*
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t soft = 0, hard = 0;
};

struct User {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::optional<uint32_t> umask;
};

// A missing process.capabilities means empty sets, even for root (runc 1.1
// does the same).
struct Capabilities {
  std::vector<std::string> bounding, effective, inheritable, permitted, ambient;
};

// "CAP_CHOWN" -> 0 ... "CAP_CHECKPOINT_RESTORE" -> 40 (libcap's
// cap_from_name); -1 if unknown or not spelled as in linux/capability.h.
int CapabilityNumber(const std::string& name);
// The bit mask of the named capabilities (unknown names are skipped): the
// form the sentry's guest-side credentials take (sentry/kernel/credentials.h).
uint64_t CapabilityMask(const std::vector<std::string>& names);

struct Process {
  bool terminal = false;
  User user;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd = "/";
  Capabilities capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
};

struct Mount {
  std::string destination;
  std::string type;  // bind, tmpfs, proc, sysfs, devpts, mqueue, ...
  std::string source;
  std::vector<std::string> options;
  bool IsBind() const;
};

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout_s;
};

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
};

struct Namespace {
  std::string type;  // pid network mount ipc uts user cgroup
  std::string path;
};

struct Resources {
  std::optional<int64_t> memory_limit;
  std::optional<int64_t> memory_reservation;
  std::optional<int64_t> memory_swap;
  std::optional<uint64_t> cpu_shares;
  std::optional<int64_t> cpu_quota;
  std::optional<uint64_t> cpu_period;
  std::optional<std::string> cpuset_cpus;
  std::optional<int64_t> pids_limit;
};

struct Spec {
  std::string oci_version;
  Process process;
  struct {
    std::string path;  // absolute (made so against the bundle)
    bool readonly = false;
  } root;
  std::string hostname;
  std::vector<Mount> mounts;
  Hooks hooks;
  std::map<std::string, std::string> annotations;
  std::vector<Namespace> namespaces;
  std::string cgroups_path;
  Resources resources;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;

  bool HasNamespace(const std::string& type) const;
};

// Parses and validates config.json text. `bundle` makes root.path absolute
// (it may be "" for a text-only check).
absl::StatusOr<Spec> ParseSpec(const std::string& json_text, const std::string& bundle);
// Reads <bundle>/config.json and parses it.
absl::StatusOr<Spec> LoadBundle(const std::string& bundle);
// Reads a process.json (exec --process FILE): the "process" object alone.
absl::StatusOr<Process> LoadProcess(const std::string& path);

// Parses an OCI LinuxResources JSON object alone (`seedsc update
// --resources`, containerd's Task.Update); `what` names it in errors
// ("resources: memory.limit: must be an integer, not string").
absl::StatusOr<Resources> ParseResourcesJson(const std::string& text, const std::string& what);

// Adds HOME to `env` when it has none, as runc and runsc do: the home of
// `uid` in <rootfs>/etc/passwd, else "/".
void AddDefaultHome(const std::string& rootfs, uid_t uid, std::vector<std::string>* env);

// The config.json `seedsc spec` writes (runc spec's defaults).
std::string DefaultSpecJson(const std::vector<std::string>& args);

}  // namespace seedvisor::oci

#endif  // SEEDVISOR_RUNSC_OCI_SPEC_H_
