#include "platform/stub/stub_address_space.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

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

Status StubAddressSpace::Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                             uint64_t offset) {
  flags |= MAP_FIXED;
  if (host_fd < 0) return Call(SYS_mmap, Arg(addr), Arg(len), prot, flags | MAP_ANONYMOUS, -1, 0);
  // The stub opens the sentry's fd through /proc with the same access mode
  // the sentry's fd has, never more.
  int fl = fcntl(host_fd, F_GETFL);
  if (fl < 0) return Errno(EBADF);
  std::unique_ptr<StubSyscalls> calls = FileCalls();
  if (calls == nullptr) return Errno(EFAULT);
  char path[64];
  int n = std::snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), host_fd);
  absl::MutexLock l(&scratch_mu_);
  SV_TRY(WriteForce(UserAddr(layout_.scratch), path, static_cast<size_t>(n) + 1));
  long fd = calls->Call(SYS_openat, AT_FDCWD, Arg(layout_.scratch), (fl & O_ACCMODE) | O_CLOEXEC);
  if (fd < 0) return FromSyscall(fd);
  long r = calls->Call(SYS_mmap, Arg(addr), Arg(len), prot, flags, fd, Arg(offset));
  calls->Call(SYS_close, fd);
  return FromSyscall(r);
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
