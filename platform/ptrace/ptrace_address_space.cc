#include "platform/ptrace/ptrace_address_space.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <time.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/str_format.h"
#include "platform/ptrace/stub_layout.h"

namespace seedvisor::platform::ptrace {
namespace {

// The host signal that kicks a running stub thread back to its tracer. Its
// default action is "ignore", so a stray one after detach harms nothing.
constexpr int kInterruptSignal = SIGURG;

pid_t HostTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

bool IsFaultSignal(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
         sig == SIGTRAP || sig == SIGSYS;
}

// Waits for the next stop of `tid`; retries EINTR.
int WaitFor(pid_t tid) {
  int status = 0;
  while (waitpid(tid, &status, __WALL) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

}  // namespace

Status SeizeAndStop(pid_t tid) {
  if (::ptrace(PTRACE_SEIZE, tid, nullptr,
             // TRACESECCOMP: systrap stubs let injected calls through with
             // SECCOMP_RET_TRACE (seccomp/stub_policy.cc); ptrace stubs have
             // no filter and never stop for it.
             reinterpret_cast<void*>(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL |
                                     PTRACE_O_TRACESECCOMP)) != 0) {
    return Errno(errno);
  }
  if (::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) != 0) return Errno(errno);
  int status = WaitFor(tid);
  if (status < 0 || !WIFSTOPPED(status)) return Errno(ESRCH);
  return {};
}

long InjectSyscall(pid_t tid, uint64_t gadget_addr, long nr, const long (&args)[6], bool* dead) {
  Registers saved;
  if (::ptrace(PTRACE_GETREGS, tid, nullptr, &saved) != 0) return -ESRCH;
  Registers r = saved;
  r.rip = gadget_addr;
  r.rax = static_cast<uint64_t>(nr);
  r.orig_rax = static_cast<uint64_t>(-1);  // no syscall restart on resume
  r.rdi = static_cast<uint64_t>(args[0]);
  r.rsi = static_cast<uint64_t>(args[1]);
  r.rdx = static_cast<uint64_t>(args[2]);
  r.r10 = static_cast<uint64_t>(args[3]);
  r.r8 = static_cast<uint64_t>(args[4]);
  r.r9 = static_cast<uint64_t>(args[5]);
  if (::ptrace(PTRACE_SETREGS, tid, nullptr, &r) != 0) return -ESRCH;
  for (;;) {
    if (::ptrace(PTRACE_CONT, tid, nullptr, nullptr) != 0) return -ESRCH;
    int status = WaitFor(tid);
    if (status < 0 || !WIFSTOPPED(status)) {
      *dead = true;
      return -ESRCH;
    }
    // A seccomp stop (systrap's filter saying SECCOMP_RET_TRACE): continuing
    // lets the injected syscall run.
    if ((status >> 16) == PTRACE_EVENT_SECCOMP) continue;
    if (WSTOPSIG(status) == SIGTRAP) break;
    // Anything else (an interrupt meant for guest mode, a SIGCHLD in the
    // zygote) is dropped: the task checks its signals before it returns to
    // the guest anyway.
  }
  ::ptrace(PTRACE_GETREGS, tid, nullptr, &r);
  ::ptrace(PTRACE_SETREGS, tid, nullptr, &saved);
  return static_cast<long>(r.rax);
}

// ---- PtraceAddressSpace ----

PtraceAddressSpace::PtraceAddressSpace(pid_t pid, const StubLayout& layout)
    : proc_(pid), layout_(layout) {}

// Every context has detached by now; proc_ kills what is left of the stub and
// the zygote reaps it.
PtraceAddressSpace::~PtraceAddressSpace() = default;

void PtraceAddressSpace::Register(pid_t host_tid, PtraceContext* ctx) {
  absl::MutexLock l(&mu_);
  injectors_[host_tid] = ctx;
}

void PtraceAddressSpace::Unregister(pid_t host_tid) {
  absl::MutexLock l(&mu_);
  injectors_.erase(host_tid);
}

long PtraceAddressSpace::Inject(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  PtraceContext* ctx = nullptr;
  {
    absl::MutexLock l(&mu_);
    auto it = injectors_.find(HostTid());
    if (it != injectors_.end()) ctx = it->second;
  }
  // A mapping call from a thread with no context here is a sentry bug; fail
  // the guest's call rather than touch a stub we do not trace.
  if (ctx == nullptr) return -EFAULT;
  return ctx->Inject(kStubSyscallGadget, nr, a0, a1, a2, a3, a4, a5);
}

Status PtraceAddressSpace::FromSyscall(long r) {
  if (r < 0 && r > -4096) return Errno(static_cast<int>(-r));
  return {};
}

Status PtraceAddressSpace::Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                               uint64_t offset) {
  flags |= MAP_FIXED;
  if (host_fd < 0) {
    long r = Inject(SYS_mmap, static_cast<long>(addr.value()), static_cast<long>(len), prot,
                    flags | MAP_ANONYMOUS, -1, 0);
    return FromSyscall(r);
  }
  // The stub opens the sentry's fd through /proc with the same access mode
  // the sentry's fd has, never more.
  int fl = fcntl(host_fd, F_GETFL);
  if (fl < 0) return Errno(EBADF);
  char path[64];
  int n = std::snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), host_fd);
  absl::MutexLock l(&scratch_mu_);
  SV_TRY(WriteForce(UserAddr(layout_.scratch), path, static_cast<size_t>(n) + 1));
  long fd = Inject(SYS_openat, AT_FDCWD, static_cast<long>(layout_.scratch),
                   (fl & O_ACCMODE) | O_CLOEXEC, 0);
  if (fd < 0) return FromSyscall(fd);
  long r = Inject(SYS_mmap, static_cast<long>(addr.value()), static_cast<long>(len), prot, flags,
                  fd, static_cast<long>(offset));
  Inject(SYS_close, fd);
  return FromSyscall(r);
}

Status PtraceAddressSpace::Unmap(UserAddr addr, uint64_t len) {
  return FromSyscall(Inject(SYS_munmap, static_cast<long>(addr.value()), static_cast<long>(len)));
}

Status PtraceAddressSpace::Protect(UserAddr addr, uint64_t len, int prot) {
  return FromSyscall(
      Inject(SYS_mprotect, static_cast<long>(addr.value()), static_cast<long>(len), prot));
}

Status PtraceAddressSpace::Advise(UserAddr addr, uint64_t len, int advice) {
  return FromSyscall(
      Inject(SYS_madvise, static_cast<long>(addr.value()), static_cast<long>(len), advice));
}

Status PtraceAddressSpace::Sync(UserAddr addr, uint64_t len, int flags) {
  return FromSyscall(
      Inject(SYS_msync, static_cast<long>(addr.value()), static_cast<long>(len), flags));
}

Status PtraceAddressSpace::Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr,
                                 uint64_t new_len) {
  if (new_addr == old_addr) {  // grow or shrink in place
    return FromSyscall(Inject(SYS_mremap, static_cast<long>(old_addr.value()),
                              static_cast<long>(old_len), static_cast<long>(new_len), 0));
  }
  long r = Inject(SYS_mremap, static_cast<long>(old_addr.value()), static_cast<long>(old_len),
                  static_cast<long>(new_len), MREMAP_MAYMOVE | MREMAP_FIXED,
                  static_cast<long>(new_addr.value()));
  return FromSyscall(r);
}

Result<size_t> PtraceAddressSpace::Read(UserAddr addr, void* dst, size_t len) {
  return proc_.Read(addr, dst, len);
}

Result<size_t> PtraceAddressSpace::Write(UserAddr addr, const void* src, size_t len) {
  return proc_.Write(addr, src, len);
}

Status PtraceAddressSpace::WriteForce(UserAddr addr, const void* src, size_t len) {
  return proc_.WriteForce(addr, src, len);
}

UserAddr PtraceAddressSpace::UserTop() const { return UserAddr(kStubBase); }

// ---- PtraceContext ----

PtraceContext::PtraceContext(std::shared_ptr<PtraceAddressSpace> as, pid_t tid)
    : as_(std::move(as)), tid_(tid), owner_(HostTid()) {
  as_->Register(owner_, this);
}

PtraceContext::~PtraceContext() {
  as_->Unregister(owner_);
  if (dead_) return;
  // Let the stub thread end itself once detached.
  Registers regs;
  if (::ptrace(PTRACE_GETREGS, tid_, nullptr, &regs) == 0) {
    regs.rip = as_->layout().entry + kStubExitGadget;
    regs.orig_rax = static_cast<uint64_t>(-1);
    ::ptrace(PTRACE_SETREGS, tid_, nullptr, &regs);
  }
  ::ptrace(PTRACE_DETACH, tid_, nullptr, nullptr);
}

Stop PtraceContext::Run(Registers& regs) {
  Stop stop;
  if (dead_) {
    stop.kind = StopKind::kDead;
    return stop;
  }
  if (::ptrace(PTRACE_SETREGS, tid_, nullptr, &regs) != 0) {
    dead_ = true;
    stop.kind = StopKind::kDead;
    return stop;
  }
  for (;;) {
    if (::ptrace(PTRACE_SYSEMU, tid_, nullptr, nullptr) != 0) {
      dead_ = true;
      stop.kind = StopKind::kDead;
      return stop;
    }
    int status = WaitFor(tid_);
    if (status < 0 || WIFEXITED(status) || WIFSIGNALED(status)) {
      dead_ = true;
      stop.kind = StopKind::kDead;
      return stop;
    }
    ::ptrace(PTRACE_GETREGS, tid_, nullptr, &regs);
    int sig = WSTOPSIG(status);
    if (sig == (SIGTRAP | 0x80)) {
      stop.kind = StopKind::kSyscall;
      return stop;
    }
    if ((status >> 16) == PTRACE_EVENT_STOP) {
      stop.kind = StopKind::kInterrupt;
      return stop;
    }
    // A signal-delivery stop. It is never delivered to the stub: the sentry
    // decides what the guest sees.
    siginfo_t info{};
    ::ptrace(PTRACE_GETSIGINFO, tid_, nullptr, &info);
    if (IsFaultSignal(sig) && info.si_code > 0) {
      stop.kind = StopKind::kFault;
      stop.info = info;
      return stop;
    }
    stop.kind = StopKind::kInterrupt;
    return stop;
  }
}

int64_t PtraceContext::CpuTimeNs() const { return as_->process().ThreadCpuTimeNs(tid_); }

void PtraceContext::Interrupt() { syscall(SYS_tgkill, as_->host_pid(), tid_, kInterruptSignal); }

Status PtraceContext::GetFpRegs(FpRegisters& fp) {
  if (::ptrace(PTRACE_GETFPREGS, tid_, nullptr, &fp) != 0) return Errno(errno);
  return {};
}

Status PtraceContext::SetFpRegs(const FpRegisters& fp) {
  if (::ptrace(PTRACE_SETFPREGS, tid_, nullptr, &fp) != 0) return Errno(errno);
  return {};
}

long PtraceContext::Inject(uint64_t gadget, long nr, long a0, long a1, long a2, long a3, long a4,
                           long a5) {
  const long args[6] = {a0, a1, a2, a3, a4, a5};
  return InjectSyscall(tid_, as_->layout().entry + gadget, nr, args, &dead_);
}

Result<ThreadHandle> PtraceContext::NewThread() {
  constexpr long kFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                          CLONE_SYSVSEM;
  // The new thread shares this thread's stack pointer but never touches the
  // stack: it parks in a futex wait until a sentry thread seizes it.
  long tid = Inject(kStubForkGadget, SYS_clone, kFlags, 0, 0, 0, 0, 0);
  if (tid <= 0) return Errno(tid < 0 ? static_cast<int>(-tid) : EAGAIN);
  return ThreadHandle{static_cast<int>(tid)};
}

Result<std::shared_ptr<AddressSpace>> PtraceContext::ForkAddressSpace() {
  // CLONE_PARENT: the zygote, not this stub, becomes the parent and reaps it.
  long pid = Inject(kStubForkGadget, SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0, 0);
  if (pid <= 0) return Errno(pid < 0 ? static_cast<int>(-pid) : EAGAIN);
  return std::shared_ptr<AddressSpace>(
      std::make_shared<PtraceAddressSpace>(static_cast<pid_t>(pid), as_->layout()));
}

}  // namespace seedvisor::platform::ptrace
