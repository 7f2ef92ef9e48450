// Containers forked from a seedd seed instead of booted by `seedsc create`
// (issue 10, "containerd without per-container exec"). A container whose
// config.json carries the annotation dev.seedvisor.seed=NAME is an FRI Fork
// (fri/fri.proto) of seedd's seed NAME, left paused until Task.Start resumes
// it: no runtime binary runs for it, at create or at delete. Its init is the
// seed's own program (for seedd's runtime seeds, the runtime's entry
// program reading request frames on stdin), its root the seed's.
//
//   if (std::string seed = SeedOf(spec); !seed.empty()) {
//     ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> sb,
//                      ForkFromSeed(cfg, seed, id, io->SandboxStdio(), cgroup));
//   }
//   RETURN_IF_ERROR(ActivateForked(cfg, id));   // Task.Start
//   sb->Destroy();                              // an FRI Destroy
#ifndef SEEDVISOR_SHIM_SEED_FORK_H_
#define SEEDVISOR_SHIM_SEED_FORK_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runsc/oci/spec.h"
#include "sentry/control/control.pb.h"
#include "shim/sandbox.h"

namespace seedvisor::shim {

inline constexpr char kSeedAnnotation[] = "dev.seedvisor.seed";

// The annotation's value, or "" for a container seedsc boots.
std::string SeedOf(const oci::Spec& spec);

// seedd's FRI socket: cfg.seedd_fri_address when set, else the path written
// in <cfg.seedd_state_dir>/fri.address. The error names both and says to
// start seedd.
absl::StatusOr<std::string> SeeddFriAddress(const SandboxConfig& cfg);

// Forks seedd's seed `seed` into a paused sandbox for container `id` whose
// processes join `cgroup` ("" = the seed's), with `stdio` (what ProcessIO
// gives for the init). `seed` is an FRI sandbox id of a seed, or a runtime
// name: the level-1 seed seedd labels runtime=NAME, level=1 ("python" ->
// python-l1). Errors name the seed and what is missing (seedd, the seed).
absl::StatusOr<std::unique_ptr<Sandbox>> ForkFromSeed(const SandboxConfig& cfg,
                                                      const std::string& seed,
                                                      const std::string& id,
                                                      const control::v1::Stdio& stdio,
                                                      const std::string& cgroup);

// FRI Activate of container `id`'s forked sandbox (Task.Start): seedd
// resumes it and knows it runs.
absl::Status ActivateForked(const SandboxConfig& cfg, const std::string& id);

// FRI Destroy of container `id`'s forked sandbox (NotFound when seedd no
// longer has it).
absl::Status DestroyForked(const SandboxConfig& cfg, const std::string& id);

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_SEED_FORK_H_
