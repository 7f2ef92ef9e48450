#include "platform/systrap/systrap_address_space.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/auxv.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace seedvisor::platform::systrap {
namespace {

// The kernel's struct sigaction for rt_sigaction (not glibc's).
struct KernelSigaction {
  uint64_t handler;
  uint64_t flags;
  uint64_t restorer;
  uint64_t mask;
};
constexpr uint64_t kSaRestorer = 0x04000000;

#ifndef SYS_mseal
#define SYS_mseal 462  // mseal(2), Linux 6.10
#endif

// The signals the stub's handler takes: the filter's trap, the synchronous
// faults, and the sentry's kick.
constexpr int kHandled[] = {SIGSYS, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGURG};

}  // namespace

// ---- SystrapAddressSpace ----

SystrapAddressSpace::SystrapAddressSpace(pid_t pid, const StubLayout& layout)
    : StubAddressSpace(pid, layout) {}

// Every context is gone by now; proc_ kills the stub and the zygote reaps it.
SystrapAddressSpace::~SystrapAddressSpace() {
  if (region_ != nullptr) munmap(region_, kRegionSize);
}

void SystrapAddressSpace::AbandonInForkChild() {
  if (region_ != nullptr) munmap(region_, kRegionSize);
  region_ = nullptr;
  StubAddressSpace::AbandonInForkChild();
}

bool UserFsgsbase() {
  // SEEDVISOR_SYSTRAP_FSGSBASE=0 takes the arch_prctl path on any host (the
  // tests run it where the kernel would allow the instructions).
  static const bool allowed = [] {
    const char* env = std::getenv("SEEDVISOR_SYSTRAP_FSGSBASE");
    if (env != nullptr && std::strcmp(env, "0") == 0) return false;
    constexpr unsigned long kHwcap2Fsgsbase = 1ul << 1;  // HWCAP2_FSGSBASE, asm/hwcap2.h
    return (getauxval(AT_HWCAP2) & kHwcap2Fsgsbase) != 0;
  }();
  return allowed;
}

absl::StatusOr<std::shared_ptr<SystrapAddressSpace>> SystrapAddressSpace::Create(
    pid_t pid, const StubLayout& layout, const std::vector<sock_filter>* filter) {
  std::shared_ptr<SystrapAddressSpace> as(new SystrapAddressSpace(pid, layout));
  if (absl::Status s = as->Setup(filter); !s.ok()) return s;
  return as;
}

absl::Status SystrapAddressSpace::Setup(const std::vector<sock_filter>* filter) {
  if (!proc_.ok()) {
    return absl::InternalError(absl::StrCat("systrap: opening stub ", proc_.pid(), " (mem, pidfd) failed"));
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
    Injector inj(proc_.pid(), layout_.entry);
    if (!inj.ok()) {
      close(memfd);
      return absl::InternalError(absl::StrCat("attaching to stub ", proc_.pid(), " failed"));
    }
    auto fail = [&](const char* what, long r) {
      st = absl::InternalError(
          absl::StrCat("setting up stub ", proc_.pid(), ": ", what, ": ", std::strerror(-r)));
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
    if (st.ok()) {
      // No fork inherits the region (a forked stub maps its own, above),
      // and once sealed nothing can unmap, replace, move or mprotect it in
      // this stub: not a guest that reaches the stub's syscall instruction,
      // not a sentry bug. Without the seal a guest could map private memory
      // over it; the handler would then post into that and never wake us.
      long r = inj.Call(SYS_madvise, static_cast<long>(kRegionBase),
                        static_cast<long>(kRegionSize), MADV_DONTFORK);
      if (r != 0) fail("MADV_DONTFORK on the region", r);
      r = st.ok() ? inj.Call(SYS_mseal, static_cast<long>(kRegionBase),
                             static_cast<long>(kRegionSize), 0)
                  : 0;
      if (r != 0 && r != -ENOSYS) fail("sealing the region", r);
    }
    if (st.ok() && filter != nullptr) {
      // Slot 0 is the setup area: the sentry writes the arguments there.
      auto* sa = reinterpret_cast<KernelSigaction*>(slot(0));
      sa->handler = layout_.entry + (UserFsgsbase() ? kStubHandler : kStubHandlerNoFsgsbase);
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

long SystrapAddressSpace::MemoryCall(long nr, const long (&a)[6]) {
  // A mapping call from a thread with no context here is a sentry bug; fail
  // the guest's call rather than touch a thread another task drives.
  SystrapContext* ctx = contexts_.Caller();
  if (ctx == nullptr) return -EFAULT;
  return ctx->StubCall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// The filter lets the stub's handler make memory calls only: opening a file
// needs the thread seized and injected (it waits in its handler meanwhile).
std::unique_ptr<stub::StubSyscalls> SystrapAddressSpace::FileCalls() {
  SystrapContext* ctx = contexts_.Caller();
  if (ctx == nullptr) return nullptr;
  return std::make_unique<Injector>(ctx->tid(), layout_.entry);
}

}  // namespace seedvisor::platform::systrap
