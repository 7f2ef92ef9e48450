#include "platform/stub/seed_fork_spares.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "platform/stub/injector.h"

namespace seedvisor::platform::stub {

SeedForkSpares::~SeedForkSpares() {
  std::map<pid_t, Set> sets;
  {
    absl::MutexLock l(&mu_);
    sets.swap(sets_);
  }
  for (auto& [pgid, set] : sets) End(set, false);
}

void SeedForkSpares::End(Set& set, bool let_go) {
  for (auto& [seed_as, c] : set.copies) {
    if (let_go) c.as->AbandonInForkChild();  // closes our fds, kills nothing
  }
  // The rest die with their StubProcess: SIGKILL through the pidfd.
  set.copies.clear();
  if (set.zygote_pidfd >= 0) {
    if (!let_go) syscall(SYS_pidfd_send_signal, set.zygote_pidfd, SIGKILL, nullptr, 0);
    close(set.zygote_pidfd);
  }
  set.zygote_pidfd = set.zygote = -1;
}

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
  Set& set = sets_[pgid];
  if (set.zygote_pidfd >= 0) {
    syscall(SYS_pidfd_send_signal, set.zygote_pidfd, SIGKILL, nullptr, 0);
    close(set.zygote_pidfd);
  }
  set.zygote = *z;
  set.zygote_pidfd = pidfd;
  return absl::OkStatus();
}

void SeedForkSpares::AddCopy(pid_t pgid, const AddressSpace* seed_as,
                             std::shared_ptr<StubAddressSpace> copy, std::vector<pid_t> threads) {
  // The copy's parent is the seed's zygote, which it must outlive
  // (PrepareForkedStub), and so must the stubs it forks with CLONE_PARENT.
  copy->set_dies_with(0);
  Copy old;
  {
    absl::MutexLock l(&mu_);
    auto set = sets_.find(pgid);
    if (set == sets_.end() || set->second.zygote_pidfd < 0) {
      // A copy made after its spare was given up (the sandbox fork stopped
      // waiting for it, review V1): nothing would ever name or end it.
      old = Copy{std::move(copy), std::move(threads)};
    } else {
      Copy& slot = set->second.copies[seed_as];
      old = std::move(slot);
      slot = Copy{std::move(copy), std::move(threads)};
    }
  }
  // `old`, if any, dies here: SIGKILL through its pidfd.
}

pid_t SeedForkSpares::CopyPid(pid_t pgid, const AddressSpace* seed_as) {
  absl::MutexLock l(&mu_);
  auto set = sets_.find(pgid);
  if (set == sets_.end()) return -1;
  auto it = set->second.copies.find(seed_as);
  return it == set->second.copies.end() ? -1 : it->second.as->host_pid();
}

void SeedForkSpares::Finish(pid_t pgid, bool child_took_them) {
  Set set;
  {
    absl::MutexLock l(&mu_);
    auto it = sets_.find(pgid);
    if (it == sets_.end()) return;
    set = std::move(it->second);
    sets_.erase(it);
  }
  End(set, child_took_them);
}

void SeedForkSpares::AdoptInForkChild(pid_t pgid) {
  // SAFETY: this process has one thread; the seed's lock word may name its
  // threads as waiters.
  new (&mu_) absl::Mutex;
  absl::MutexLock l(&mu_);
  for (auto it = sets_.begin(); it != sets_.end();) {
    if (it->first == pgid) {
      ++it;
      continue;
    }
    End(it->second, /*let_go=*/true);
    it = sets_.erase(it);
  }
}

absl::StatusOr<pid_t> SeedForkSpares::TakeZygote(pid_t pgid) {
  absl::MutexLock l(&mu_);
  auto it = sets_.find(pgid);
  if (it == sets_.end() || it->second.zygote < 0) {
    return absl::InternalError("sandbox fork: the seed made no zygote");
  }
  Set& set = it->second;
  pid_t z = set.zygote;
  close(set.zygote_pidfd);  // the seed's handle; the zygote is ours now
  set.zygote = set.zygote_pidfd = -1;
  return z;
}

absl::StatusOr<ForkedAddressSpace> SeedForkSpares::TakeCopy(pid_t pgid,
                                                            const AddressSpace* seed_as) {
  absl::MutexLock l(&mu_);
  auto set = sets_.find(pgid);
  if (set != sets_.end()) {
    auto it = set->second.copies.find(seed_as);
    if (it != set->second.copies.end()) {
      ForkedAddressSpace out;
      out.as = std::move(it->second.as);
      for (pid_t t : it->second.threads) out.threads.push_back(ThreadHandle{t});
      set->second.copies.erase(it);
      if (set->second.copies.empty() && set->second.zygote < 0) sets_.erase(set);  // all taken
      return out;
    }
  }
  return absl::InternalError(absl::StrCat("sandbox fork: the seed made no copy of stub ",
                                          seed_as->host_pid()));
}

}  // namespace seedvisor::platform::stub
