#include "platform/stub/stub_address_space.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

#include "seccomp/stub_policy.h"

namespace seedvisor::platform::stub {
namespace {

Status FromSyscall(long r) {
  if (r < 0 && r > -4096) return Errno(static_cast<int>(-r));
  return {};
}

long Arg(UserAddr a) { return static_cast<long>(a.value()); }
long Arg(uint64_t v) { return static_cast<long>(v); }

}  // namespace

Status StubAddressSpace::Call(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  const long args[6] = {a0, a1, a2, a3, a4, a5};
  return FromSyscall(MemoryCall(nr, args));
}

long StubAddressSpace::SetThreadAffinity(
    const cpu_set_t& set, absl::FunctionRef<long(long nr, const long (&args)[6])> call) {
  absl::MutexLock l(&scratch_mu_);
  if (!WriteForce(UserAddr(layout_.scratch), &set, sizeof(set)).ok()) return -EIO;
  const long args[6] = {0, static_cast<long>(sizeof(set)), Arg(layout_.scratch), 0, 0, 0};
  return call(SYS_sched_setaffinity, args);
}

Status StubAddressSpace::Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                             uint64_t offset) {
  flags |= MAP_FIXED;
  if (host_fd < 0) return Call(SYS_mmap, Arg(addr), Arg(len), prot, flags | MAP_ANONYMOUS, -1, 0);
  absl::MutexLock l(&scratch_mu_);
  return MapOpened(addr, len, prot, flags, host_fd, offset, -1, nullptr);
}

Status StubAddressSpace::MapImmutableFile(UserAddr addr, uint64_t len, int prot, int flags,
                                          int host_fd, uint64_t offset) {
  struct stat st;
  const int fl = fcntl(host_fd, F_GETFL);
  // Only a file any guest process may read (stub_policy.h says why).
  // Otherwise the plain mapping, ours, not the virtual Map: a platform's
  // MapImmutableFile has done its own part around this call already
  // (systrap holds its site lock, which its Map would take again: a task
  // mapping a 0600 host file hung for good; kvm sets the page tables).
  if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY || fstat(host_fd, &st) != 0 ||
      !S_ISREG(st.st_mode) || !(st.st_mode & S_IROTH)) {
    return StubAddressSpace::Map(addr, len, prot, flags, host_fd, offset);
  }
  flags |= MAP_FIXED;
  absl::MutexLock l(&scratch_mu_);
  if (kept_.empty()) kept_.resize(seccomp::kStubKeptFds);
  int slot = -1;
  int victim = 0;
  for (int i = 0; i < seccomp::kStubKeptFds; ++i) {
    const KeptFile& k = kept_[i];
    if (k.used != 0 && k.dev == st.st_dev && k.ino == st.st_ino) {
      slot = i;
      break;
    }
    if (k.used < kept_[victim].used) victim = i;
  }
  if (slot >= 0) {
    kept_[slot].used = ++kept_clock_;
    const long args[6] = {Arg(addr), Arg(len), prot, flags, seccomp::kStubKeptFdBase + slot,
                          Arg(offset)};
    const long r = MemoryCall(SYS_mmap, args);
    if (r != -EBADF) return FromSyscall(r);
    kept_[slot] = KeptFile{};  // not there after all: open it again below
    victim = slot;
  }
  // The victim's fd is replaced (or, if keeping fails, left as it was, and
  // forgotten here either way).
  kept_[victim] = KeptFile{};
  bool kept = false;
  SV_TRY(MapOpened(addr, len, prot, flags, host_fd, offset, victim, &kept));
  if (kept) kept_[victim] = KeptFile{st.st_dev, st.st_ino, ++kept_clock_};
  return {};
}

Status StubAddressSpace::MapOpened(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                                   uint64_t offset, int keep_slot, bool* kept) {
  // The stub opens the sentry's fd through /proc with the same access mode
  // the sentry's fd has, never more.
  int fl = fcntl(host_fd, F_GETFL);
  if (fl < 0) return Errno(EBADF);
  std::unique_ptr<StubSyscalls> calls = FileCalls();
  if (calls == nullptr) return Errno(EFAULT);
  char path[64];
  int n = std::snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), host_fd);
  SV_TRY(WriteForce(UserAddr(layout_.scratch), path, static_cast<size_t>(n) + 1));
  long fd = calls->Call(SYS_openat, AT_FDCWD, Arg(layout_.scratch), (fl & O_ACCMODE) | O_CLOEXEC);
  if (fd < 0) return FromSyscall(fd);
  files_opened_.fetch_add(1, std::memory_order_relaxed);
  if (keep_slot >= 0) {
    // dup3 replaces whatever the slot held (closing it) in one step. A
    // stub whose fd limit is below the kept range just does not keep it.
    const long kept_fd = seccomp::kStubKeptFdBase + keep_slot;
    if (calls->Call(SYS_dup3, fd, kept_fd, O_CLOEXEC) == kept_fd) {
      calls->Call(SYS_close, fd);
      fd = kept_fd;
    } else {
      keep_slot = -1;
    }
  }
  long r = calls->Call(SYS_mmap, Arg(addr), Arg(len), prot, flags, fd, Arg(offset));
  if (keep_slot < 0) calls->Call(SYS_close, fd);
  if (kept != nullptr) *kept = keep_slot >= 0;
  return FromSyscall(r);
}

void StubAddressSpace::InheritKeptFiles(KeptFiles kept) {
  absl::MutexLock l(&scratch_mu_);
  kept_ = std::move(kept.files);
  kept_clock_ = kept.clock;
}

Status StubAddressSpace::EmptyForExec() {
  // The stub's own mappings (its text, the systrap region, the host's vDSO
  // and stack) all lie at or above UserTop(). Linux's munmap(2) takes a
  // range with holes, and the guest range holds nothing sealed: the guest
  // has no mseal (the syscall table), only the stub's image is sealed.
  SV_TRY(Call(SYS_munmap, 0, Arg(UserTop())));
  proc_.ResetPeakRss();
  return {};
}

Status StubAddressSpace::Unmap(UserAddr addr, uint64_t len) {
  return Call(SYS_munmap, Arg(addr), Arg(len));
}

Status StubAddressSpace::Protect(UserAddr addr, uint64_t len, int prot) {
  return Call(SYS_mprotect, Arg(addr), Arg(len), prot);
}

Status StubAddressSpace::Advise(UserAddr addr, uint64_t len, int advice) {
  return Call(SYS_madvise, Arg(addr), Arg(len), advice);
}

Status StubAddressSpace::Sync(UserAddr addr, uint64_t len, int flags) {
  return Call(SYS_msync, Arg(addr), Arg(len), flags);
}

Status StubAddressSpace::Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr,
                               uint64_t new_len) {
  if (new_addr == old_addr) {  // grow or shrink in place
    return Call(SYS_mremap, Arg(old_addr), Arg(old_len), Arg(new_len), 0);
  }
  return Call(SYS_mremap, Arg(old_addr), Arg(old_len), Arg(new_len),
              MREMAP_MAYMOVE | MREMAP_FIXED, Arg(new_addr));
}

}  // namespace seedvisor::platform::stub
