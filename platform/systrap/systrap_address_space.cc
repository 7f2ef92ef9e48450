#include "platform/systrap/systrap_address_space.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "platform/ptrace/ptrace_address_space.h"

namespace seedvisor::platform::systrap {
namespace {

pid_t HostTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

// The kernel's struct sigaction for rt_sigaction (not glibc's).
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};
constexpr uint64_t kSaRestorer = 0x04000000;

// The signals the stub's handler takes: the filter's trap, the synchronous
// faults, and the sentry's kick.
constexpr int kHandled[] = {SIGSYS, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGURG};

}  // namespace

// ---- Injector ----

Injector::Injector(pid_t tid, uint64_t entry) : tid_(tid), entry_(entry) {
  ok_ = ptrace::SeizeAndStop(tid).ok();
}

Injector::~Injector() {
  if (ok_ && !dead_) ::ptrace(PTRACE_DETACH, tid_, nullptr, nullptr);
}

long Injector::Call(long nr, long a0, long a1, long a2, long a3, long a4, long a5,
                    uint64_t gadget) {
  if (!ok_ || dead_) return -ESRCH;
  const long args[6] = {a0, a1, a2, a3, a4, a5};
  return ptrace::InjectSyscall(tid_, entry_ + gadget, nr, args, &dead_);
}

// ---- SystrapAddressSpace ----

SystrapAddressSpace::SystrapAddressSpace(pid_t pid, const StubLayout& layout)
    : proc_(pid), pid_(pid), layout_(layout) {}

// Every context is gone by now; proc_ kills the stub and the zygote reaps it.
SystrapAddressSpace::~SystrapAddressSpace() {
  if (region_ != nullptr) munmap(region_, kRegionSize);
}

absl::StatusOr<std::shared_ptr<SystrapAddressSpace>> SystrapAddressSpace::Create(
    pid_t pid, const StubLayout& layout, const std::vector<sock_filter>* filter) {
  std::shared_ptr<SystrapAddressSpace> as(new SystrapAddressSpace(pid, layout));
  if (absl::Status s = as->Setup(filter); !s.ok()) return s;
  return as;
}

absl::Status SystrapAddressSpace::Setup(const std::vector<sock_filter>* filter) {
  if (!proc_.ok()) {
    return absl::InternalError(absl::StrCat("systrap: opening stub ", pid_, " (mem, pidfd) failed"));
  }
  int memfd = memfd_create("seedsc-systrap", MFD_CLOEXEC);
  if (memfd < 0) return absl::InternalError("memfd_create for the systrap region failed");
  if (ftruncate(memfd, static_cast<off_t>(kRegionSize)) != 0) {
    close(memfd);
    return absl::InternalError("sizing the systrap region failed");
  }
  void* m = mmap(nullptr, kRegionSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (m == MAP_FAILED) {
    close(memfd);
    return absl::InternalError("mapping the systrap region in the sentry failed");
  }
  // SAFETY: our own fresh shared mapping of kRegionSize bytes.
  region_ = static_cast<uint8_t*>(m);
  char path[64];
  int n = std::snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), memfd);
  absl::Status st = absl::OkStatus();
  {
    Injector inj(pid_, layout_.entry);
    if (!inj.ok()) {
      close(memfd);
      return absl::InternalError(absl::StrCat("attaching to stub ", pid_, " failed"));
    }
    auto fail = [&](const char* what, long r) {
      st = absl::InternalError(
          absl::StrCat("setting up stub ", pid_, ": ", what, ": ", std::strerror(-r)));
    };
    if (pwrite(proc_.mem_fd(), path, static_cast<size_t>(n) + 1, static_cast<off_t>(layout_.scratch)) !=
        n + 1) {
      fail("writing the scratch page", -EIO);
    }
    long fd = st.ok() ? inj.Call(SYS_openat, AT_FDCWD, static_cast<long>(layout_.scratch),
                                 O_RDWR | O_CLOEXEC)
                      : -EIO;
    if (st.ok() && fd < 0) fail("opening the region", fd);
    if (st.ok()) {
      long r = inj.Call(SYS_mmap, static_cast<long>(kRegionBase), static_cast<long>(kRegionSize),
                        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
      inj.Call(SYS_close, fd);
      if (r < 0 && r > -4096) fail("mapping the region", r);
    }
    if (st.ok() && filter != nullptr) {
      // Slot 0 is the setup area: the sentry writes the arguments there.
      auto* sa = reinterpret_cast<KernelSigaction*>(slot(0));
      sa->handler = layout_.entry + kStubHandler;
      sa->flags = SA_SIGINFO | SA_ONSTACK | kSaRestorer;
      sa->restorer = layout_.entry + kStubRestorer;
      // Nothing nests inside the handler, except SIGTRAP: an injected call
      // ends on the gadget's int3 while the thread sits in the handler, and
      // a blocked forced SIGTRAP would reset our handler to SIG_DFL
      // (force_sig_info_to_task()). Under ptrace that int3 only stops.
      sa->mask = ~(uint64_t{1} << (SIGTRAP - 1));
      for (int sig : kHandled) {
        long r = inj.Call(SYS_rt_sigaction, sig, static_cast<long>(StubSlot(0)), 0, 8);
        if (r != 0) fail("rt_sigaction", r);
      }
      auto* fprog = reinterpret_cast<sock_fprog*>(slot(0) + 64);
      auto* insns = reinterpret_cast<sock_filter*>(slot(0) + 128);
      if (128 + filter->size() * sizeof(sock_filter) > kSlotSize) {
        st = absl::InternalError("the stub filter does not fit its setup area");
      } else {
        std::memcpy(insns, filter->data(), filter->size() * sizeof(sock_filter));
        fprog->len = static_cast<unsigned short>(filter->size());
        // SAFETY: a stub address, only passed to the stub's seccomp() call.
        fprog->filter = reinterpret_cast<sock_filter*>(StubSlot(0) + 128);
      }
      if (st.ok()) {
        long r = inj.Call(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        if (r != 0) fail("PR_SET_NO_NEW_PRIVS", r);
      }
      if (st.ok()) {
        long r = inj.Call(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0,
                          static_cast<long>(StubSlot(0) + 64));
        if (r != 0) fail("installing the stub filter", r);
      }
      std::memset(slot(0), 0, kSlotSize);
    }
  }
  close(memfd);
  return st;
}

int SystrapAddressSpace::AllocSlot() {
  absl::MutexLock l(&mu_);
  for (int i = 1; i < kSlots; ++i) {
    if (!used_[i]) {
      used_[i] = true;
      return i;
    }
  }
  return -1;
}

void SystrapAddressSpace::FreeSlot(int i) {
  absl::MutexLock l(&mu_);
  used_[i] = false;
}

void SystrapAddressSpace::Register(pid_t host_tid, SystrapContext* ctx) {
  absl::MutexLock l(&mu_);
  injectors_[host_tid] = ctx;
}

void SystrapAddressSpace::Unregister(pid_t host_tid) {
  absl::MutexLock l(&mu_);
  injectors_.erase(host_tid);
}

pid_t SystrapAddressSpace::CallerStubThread() {
  absl::MutexLock l(&mu_);
  auto it = injectors_.find(HostTid());
  return it == injectors_.end() ? 0 : it->second->tid();
}

SystrapContext* SystrapAddressSpace::CallerContext() {
  absl::MutexLock l(&mu_);
  auto it = injectors_.find(HostTid());
  return it == injectors_.end() ? nullptr : it->second;
}

long SystrapAddressSpace::Inject(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  // A mapping call from a thread with no context here is a sentry bug; fail
  // the guest's call rather than touch a thread another task drives.
  SystrapContext* ctx = CallerContext();
  if (ctx == nullptr) return -EFAULT;
  // Only anonymous memory calls: the stub filter lets exactly these through.
  return ctx->StubCall(nr, a0, a1, a2, a3, a4, a5);
}

Status SystrapAddressSpace::FromSyscall(long r) {
  if (r < 0 && r > -4096) return Errno(static_cast<int>(-r));
  return {};
}

Status SystrapAddressSpace::Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                                uint64_t offset) {
  flags |= MAP_FIXED;
  if (host_fd < 0) {
    return FromSyscall(Inject(SYS_mmap, static_cast<long>(addr.value()), static_cast<long>(len),
                              prot, flags | MAP_ANONYMOUS, -1, 0));
  }
  // The stub opens the sentry's fd through /proc with the same access mode
  // the sentry's fd has, never more.
  int fl = fcntl(host_fd, F_GETFL);
  if (fl < 0) return Errno(EBADF);
  pid_t tid = CallerStubThread();
  if (tid == 0) return Errno(EFAULT);
  char path[64];
  int n = std::snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), host_fd);
  absl::MutexLock l(&scratch_mu_);
  SV_TRY(WriteForce(UserAddr(layout_.scratch), path, static_cast<size_t>(n) + 1));
  Injector inj(tid, layout_.entry);
  long fd = inj.Call(SYS_openat, AT_FDCWD, static_cast<long>(layout_.scratch),
                     (fl & O_ACCMODE) | O_CLOEXEC, 0);
  if (fd < 0) return FromSyscall(fd);
  long r = inj.Call(SYS_mmap, static_cast<long>(addr.value()), static_cast<long>(len), prot,
                    flags, fd, static_cast<long>(offset));
  inj.Call(SYS_close, fd);
  return FromSyscall(r);
}

Status SystrapAddressSpace::Unmap(UserAddr addr, uint64_t len) {
  return FromSyscall(Inject(SYS_munmap, static_cast<long>(addr.value()), static_cast<long>(len)));
}

Status SystrapAddressSpace::Protect(UserAddr addr, uint64_t len, int prot) {
  return FromSyscall(
      Inject(SYS_mprotect, static_cast<long>(addr.value()), static_cast<long>(len), prot));
}

Status SystrapAddressSpace::Advise(UserAddr addr, uint64_t len, int advice) {
  return FromSyscall(
      Inject(SYS_madvise, static_cast<long>(addr.value()), static_cast<long>(len), advice));
}

Status SystrapAddressSpace::Sync(UserAddr addr, uint64_t len, int flags) {
  return FromSyscall(
      Inject(SYS_msync, static_cast<long>(addr.value()), static_cast<long>(len), flags));
}

Status SystrapAddressSpace::Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr,
                                  uint64_t new_len) {
  if (new_addr == old_addr) {  // grow or shrink in place
    return FromSyscall(Inject(SYS_mremap, static_cast<long>(old_addr.value()),
                              static_cast<long>(old_len), static_cast<long>(new_len), 0));
  }
  return FromSyscall(Inject(SYS_mremap, static_cast<long>(old_addr.value()),
                            static_cast<long>(old_len), static_cast<long>(new_len),
                            MREMAP_MAYMOVE | MREMAP_FIXED, static_cast<long>(new_addr.value())));
}

}  // namespace seedvisor::platform::systrap
