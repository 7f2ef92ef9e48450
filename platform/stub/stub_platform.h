// StubPlatform: what the three stub platforms (ptrace, systrap, kvm) share
// around their zygote, the stub every address space's process is forked
// from, and the sandbox-fork spares made from it (SeedForkSpares).
//
//   class SystrapPlatform : public stub::StubPlatform {
//     absl::Status Init() { return StartZygote(kStubImage, kStubImageSize); }
//     ... NewAddressSpace() { SV_ASSIGN_OR_RETURN(pid, ForkStubFromZygote()); ... }
//     ... PrepareSeedFork(ctx, pgid, threads) {  // the platform's own copy
//       ...; AddSpareCopy(pgid, ctx.address_space(), copy, tids); }
//   };
//
// The zygote dies with the platform (or StopHostProcesses). In a forked
// sentry, AdoptInForkChild replaces the seed's zygote by the fork's own
// (made ahead by PrepareForkZygote) without stopping the seed's.
#ifndef SEEDVISOR_PLATFORM_STUB_STUB_PLATFORM_H_
#define SEEDVISOR_PLATFORM_STUB_STUB_PLATFORM_H_

#include <sys/types.h>

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "platform/platform.h"
#include "platform/seed_copies.h"
#include "platform/stub/seed_fork_spares.h"
#include "platform/stub/stub_address_space.h"
#include "platform/stub/stub_layout.h"

namespace seedvisor::platform::stub {

class StubPlatform : public Platform, public SeedCopies {
 public:
  ~StubPlatform() override;
  void StopHostProcesses() override;
  pid_t HostProcessGroup() const override { return zygote_group_; }

  // ---- Sandbox fork (Platform's contract) ----
  absl::Status PrepareForkZygote(pid_t pgid) final;
  void FinishSeedFork(pid_t pgid, bool child_took_them) final;
  // ptrace and systrap: the copy's stub process (kvm: -1, its guest memory
  // is behind the VM's memslots).
  pid_t SeedCopyProcess(const AddressSpace& seed_as, pid_t pgid) override;
  absl::StatusOr<pid_t> AdoptInForkChild(pid_t pgid) final;
  absl::StatusOr<ForkedAddressSpace> TakeSeedCopy(AddressSpace& seed_as, pid_t pgid) final;

 protected:
  StubPlatform() = default;

  // Starts the zygote from the platform's stub image. Must run on a thread
  // that lives as long as the sandbox: the zygote dies with it
  // (PR_SET_PDEATHSIG).
  absl::Status StartZygote(const uint8_t* image, size_t size);
  // A new parked stub process, forked by the zygote; it dies with the
  // zygote (its address space's set_dies_with(zygote())).
  Result<pid_t> ForkStubFromZygote();
  pid_t zygote() const { return zygote_; }
  // Where the stub's code and data are in every stub (no ASLR).
  const StubLayout& layout() const { return layout_; }

  // For PrepareSeedFork: `copy` (with its parked threads, initial thread
  // first) is the copy of `seed_as` that the fork using set `pgid` takes.
  void AddSpareCopy(pid_t pgid, const AddressSpace& seed_as, std::shared_ptr<StubAddressSpace> copy,
                    std::vector<pid_t> threads);

 private:
  absl::Mutex mu_;  // serializes injections into the zygote
  pid_t zygote_ = -1;
  // The booted zygote's own group (its pid: it leads it), where the stubs
  // it forks live; -1 in a forked sentry, whose zygote is in its anchor's.
  pid_t zygote_group_ = -1;
  StubLayout layout_;
  SeedForkSpares spares_;  // sandbox fork: what the next fork takes
};

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_STUB_PLATFORM_H_
