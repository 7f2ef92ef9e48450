#include "platform/stub/seed_fork_spares.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "platform/stub/injector.h"

namespace seedvisor::platform::stub {

absl::Status SeedForkSpares::MakeZygote(pid_t seed_zygote, uint64_t entry, pid_t pgid) {
  Result<pid_t> z = ForkZygoteInGroup(seed_zygote, entry, pgid);
  if (!z.ok()) {
    return absl::InternalError(absl::StrCat("making the forked sandbox's zygote: ",
                                            std::strerror(z.error().value())));
  }
  // A pidfd: the seed's zygote reaps it, so its pid alone could be reused
  // by the time we kill it.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, *z, 0));
  if (pidfd < 0) {
    int err = errno;
    kill(*z, SIGKILL);  // not reaped before it dies: still its pid
    return absl::InternalError(absl::StrCat("pidfd of the forked sandbox's zygote: ",
                                            std::strerror(err)));
  }
  absl::MutexLock l(&mu_);
  if (zygote_pidfd_ >= 0) {
    syscall(SYS_pidfd_send_signal, zygote_pidfd_, SIGKILL, nullptr, 0);
    close(zygote_pidfd_);
  }
  zygote_ = *z;
  zygote_pidfd_ = pidfd;
  return absl::OkStatus();
}

void SeedForkSpares::AddCopy(const AddressSpace* seed_as, std::shared_ptr<StubAddressSpace> copy,
                             std::vector<pid_t> threads) {
  Copy old;
  {
    absl::MutexLock l(&mu_);
    Copy& slot = copies_[seed_as];
    old = std::move(slot);
    slot = Copy{std::move(copy), std::move(threads)};
  }
  // `old`, if any, dies here: SIGKILL through its pidfd.
}

void SeedForkSpares::Finish(bool child_took_them) {
  std::map<const AddressSpace*, Copy> copies;
  int pidfd;
  {
    absl::MutexLock l(&mu_);
    copies.swap(copies_);
    pidfd = zygote_pidfd_;
    zygote_pidfd_ = zygote_ = -1;
  }
  for (auto& [seed_as, c] : copies) {
    if (child_took_them) c.as->AbandonInForkChild();  // closes our fds, kills nothing
  }
  // The rest die with their StubProcess: SIGKILL through the pidfd.
  if (pidfd >= 0) {
    if (!child_took_them) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    close(pidfd);
  }
}

void SeedForkSpares::ReinitInForkChild() {
  // SAFETY: this process has one thread; the seed's lock word may name its
  // threads as waiters.
  new (&mu_) absl::Mutex;
}

absl::StatusOr<pid_t> SeedForkSpares::TakeZygote() {
  absl::MutexLock l(&mu_);
  if (zygote_ < 0) return absl::InternalError("sandbox fork: the seed made no zygote");
  pid_t z = zygote_;
  close(zygote_pidfd_);  // the seed's handle; the zygote is ours now
  zygote_ = zygote_pidfd_ = -1;
  return z;
}

absl::StatusOr<ForkedAddressSpace> SeedForkSpares::TakeCopy(const AddressSpace* seed_as) {
  absl::MutexLock l(&mu_);
  auto it = copies_.find(seed_as);
  if (it == copies_.end()) {
    return absl::InternalError(absl::StrCat("sandbox fork: the seed made no copy of stub ",
                                            seed_as->host_pid()));
  }
  ForkedAddressSpace out;
  out.as = std::move(it->second.as);
  for (pid_t t : it->second.threads) out.threads.push_back(ThreadHandle{t});
  copies_.erase(it);
  return out;
}

}  // namespace seedvisor::platform::stub
