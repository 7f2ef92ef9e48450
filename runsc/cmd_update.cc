// `seedsc update [-r FILE|-] [--pids-limit N ...] ID`: new linux.resources
// for a container's sandbox, as `runc update` takes them: an OCI
// LinuxResources JSON object (--resources/-r; "-" reads stdin; then the
// other flags are ignored, as runc ignores them), or runc's one-value flags.
// Memory, cpu and cpuset limits are written into the sandbox's cgroups; the
// pids limit is the sandbox's own (it counts its guest tasks, sentry/kernel)
// and is set over the control socket, while the host cgroup gets room for
// the sentry's threads and stubs (container::HostPidsMax). Limits not named
// stay as they are.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

#include "absl/strings/numbers.h"
#include "runsc/cmd_common.h"
#include "runsc/container/cgroup.h"
#include "runsc/container/sandbox.h"
#include "runsc/oci/spec.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::runsc {
namespace {

// runc's one-value flags; "" = not given.
struct ValueFlags {
  std::string memory, memory_reservation, memory_swap, cpu_share, cpu_quota, cpu_period;
  std::string cpuset_cpus, pids_limit;
};

template <typename T>
absl::Status ParseInt(const std::string& flag, const std::string& text, std::optional<T>* out) {
  if (text.empty()) return absl::OkStatus();
  T v;
  if (!absl::SimpleAtoi(text, &v)) {
    return absl::InvalidArgumentError("update: --" + flag + ": not a number: \"" + text + "\"");
  }
  *out = v;
  return absl::OkStatus();
}

absl::StatusOr<oci::Resources> FromFlags(const ValueFlags& f) {
  oci::Resources r;
  absl::Status s = ParseInt("memory", f.memory, &r.memory_limit);
  if (s.ok()) s = ParseInt("memory-reservation", f.memory_reservation, &r.memory_reservation);
  if (s.ok()) s = ParseInt("memory-swap", f.memory_swap, &r.memory_swap);
  if (s.ok()) s = ParseInt("cpu-share", f.cpu_share, &r.cpu_shares);
  if (s.ok()) s = ParseInt("cpu-quota", f.cpu_quota, &r.cpu_quota);
  if (s.ok()) s = ParseInt("cpu-period", f.cpu_period, &r.cpu_period);
  if (s.ok()) s = ParseInt("pids-limit", f.pids_limit, &r.pids_limit);
  if (!s.ok()) return s;
  if (!f.cpuset_cpus.empty()) r.cpuset_cpus = f.cpuset_cpus;
  return r;
}

}  // namespace

int CmdUpdate(const GlobalConfig& cfg, const std::vector<std::string>& args) {
  FlagSet fs("update");
  std::string resources;
  ValueFlags vf;
  fs.String("resources", &resources,
            "LinuxResources JSON file (\"-\": stdin); then the other flags are ignored");
  fs.Alias("r", "resources");
  fs.String("memory", &vf.memory, "memory limit (bytes)");
  fs.String("memory-reservation", &vf.memory_reservation, "memory soft limit (bytes)");
  fs.String("memory-swap", &vf.memory_swap, "memory + swap limit (bytes; -1: unlimited)");
  fs.String("cpu-share", &vf.cpu_share, "CPU shares (relative weight)");
  fs.String("cpu-quota", &vf.cpu_quota, "CPU CFS quota per period (µs)");
  fs.String("cpu-period", &vf.cpu_period, "CPU CFS period (µs)");
  fs.String("cpuset-cpus", &vf.cpuset_cpus, "CPUs to use");
  fs.String("pids-limit", &vf.pids_limit, "maximum number of tasks in the container (-1: none)");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 1, 1, "update [--resources=FILE|-] [flags] <container id>", &pos)) {
    return kExitUsage;
  }
  auto st = LoadContainer(cfg, pos[0]);
  if (!st.ok()) return Fail(st.status());
  absl::StatusOr<oci::Resources> r;
  if (!resources.empty()) {
    std::string text;
    if (resources == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      std::ifstream in(resources);
      if (!in) return Fail("update: cannot read " + resources);
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    r = oci::ParseResourcesJson(text, "resources");
  } else {
    r = FromFlags(vf);
  }
  if (!r.ok()) return Fail(r.status());
  absl::Status s = container::ApplyUpdate(
      *r, st->id, st->joined(), st->cgroups_path, [&](int64_t limit) {
        control::v1::UpdateRequest req;
        req.set_container_id(st->id);
        req.set_pids_limit(limit);
        control::v1::UpdateResponse resp;
        return container::Call(*st, "Update", req, &resp);
      });
  if (!s.ok()) return Fail(s);
  return 0;
}

}  // namespace seedvisor::runsc
