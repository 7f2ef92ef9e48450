#include "platform/stub/stub_platform.h"

#include <new>
#include <utility>

#include "platform/stub/injector.h"
#include "platform/stub/stub_process.h"

namespace seedvisor::platform::stub {

StubPlatform::~StubPlatform() { StopZygote(zygote_); }

void StubPlatform::StopHostProcesses() {
  StopZygote(zygote_);
  zygote_ = -1;
  zygote_group_ = -1;
}

absl::Status StubPlatform::StartZygote(const uint8_t* image, size_t size) {
  absl::StatusOr<Zygote> z = stub::StartZygote(image, size);
  if (!z.ok()) return z.status();
  zygote_ = z->pid;
  zygote_group_ = z->pid;  // stub::StartZygote: setpgid(0, 0) before exec
  layout_ = z->layout;
  return absl::OkStatus();
}

Result<pid_t> StubPlatform::ForkStubFromZygote() {
  absl::MutexLock l(&mu_);
  return ForkStub(zygote_, layout_.entry);
}

void StubPlatform::AddSpareCopy(pid_t pgid, const AddressSpace& seed_as,
                                std::shared_ptr<StubAddressSpace> copy, std::vector<pid_t> threads) {
  spares_.AddCopy(pgid, &seed_as, std::move(copy), std::move(threads));
}

absl::Status StubPlatform::PrepareForkZygote(pid_t pgid) {
  absl::MutexLock l(&mu_);
  return spares_.MakeZygote(zygote_, layout_.entry, pgid);
}

pid_t StubPlatform::SeedCopyProcess(const AddressSpace& seed_as, pid_t pgid) {
  return spares_.CopyPid(pgid, &seed_as);
}

void StubPlatform::FinishSeedFork(pid_t pgid, bool child_took_them) {
  spares_.Finish(pgid, child_took_them);
}

absl::StatusOr<pid_t> StubPlatform::AdoptInForkChild(pid_t pgid) {
  // SAFETY: this process has one thread; the seed's lock word may name its
  // threads as waiters, so it starts over.
  new (&mu_) absl::Mutex;
  spares_.AdoptInForkChild(pgid);
  absl::StatusOr<pid_t> z = spares_.TakeZygote(pgid);
  if (!z.ok()) return z.status();
  zygote_ = *z;  // the seed's zygote stays the seed's: never stopped from here
  zygote_group_ = -1;  // the seed's group; ours is the anchor's (sentry/sfork)
  return zygote_;
}

absl::StatusOr<ForkedAddressSpace> StubPlatform::TakeSeedCopy(AddressSpace& seed_as, pid_t pgid) {
  return spares_.TakeCopy(pgid, &seed_as);
}

}  // namespace seedvisor::platform::stub
