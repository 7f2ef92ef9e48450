#include "platform/ptrace/ptrace_address_space.h"

#include <elf.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "platform/stub/injector.h"

namespace seedvisor::platform::ptrace {
namespace {

using stub::InjectSyscall;
using stub::WaitFor;
using stub::kStubExitGadget;
using stub::kStubForkGadget;
using stub::kStubSyscallGadget;

// The host signal that kicks a running stub thread back to its tracer. Its
// default action is "ignore", so a stray one after detach harms nothing.
constexpr int kInterruptSignal = SIGURG;

pid_t HostTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

bool IsFaultSignal(int sig) {
  return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
         sig == SIGTRAP || sig == SIGSYS;
}

}  // namespace

// ---- PtraceAddressSpace ----

// A mapping call from a thread with no context here is a sentry bug; fail
// the guest's call rather than touch a stub we do not trace.
long PtraceAddressSpace::MemoryCall(long nr, const long (&args)[6]) {
  PtraceContext* ctx = contexts_.Caller();
  if (ctx == nullptr) return -EFAULT;
  return ctx->Inject(kStubSyscallGadget, nr, args[0], args[1], args[2], args[3], args[4], args[5]);
}

namespace {

// Any host syscall, through the calling thread's traced stub thread.
class ContextSyscalls : public stub::StubSyscalls {
 public:
  explicit ContextSyscalls(PtraceContext* ctx) : ctx_(ctx) {}

 protected:
  long Invoke(long nr, const long (&a)[6]) override {
    return ctx_->Inject(kStubSyscallGadget, nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  }

 private:
  PtraceContext* const ctx_;
};

}  // namespace

std::unique_ptr<stub::StubSyscalls> PtraceAddressSpace::FileCalls() {
  PtraceContext* ctx = contexts_.Caller();
  if (ctx == nullptr) return nullptr;
  return std::make_unique<ContextSyscalls>(ctx);
}

// ---- PtraceContext ----

PtraceContext::PtraceContext(std::shared_ptr<PtraceAddressSpace> as, pid_t tid)
    : as_(std::move(as)), tid_(tid), owner_(HostTid()) {
  as_->contexts().Register(owner_, this);
}

PtraceContext::~PtraceContext() {
  as_->contexts().Unregister(owner_);
  if (dead_) return;
  // An untraced thread that holds an rseq registration could be sent to
  // guest code on its way to the exit gadget, with no filter between it and
  // the host: it ends only unregistered, else its process dies.
  if (!DropRseq()) {
    if (!dead_) kill(tid_, SIGKILL);
    return;
  }
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
  if (rseq_segv_) {
    // What the thread would have stopped with, had the injection not
    // cleared the descriptor (force_sig(SIGSEGV)).
    rseq_segv_ = false;
    stop.kind = StopKind::kFault;
    stop.info.si_signo = SIGSEGV;
    stop.info.si_code = SI_KERNEL;
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

size_t PtraceContext::ReadXstate() {
  // The kernel's user XSAVE size (fpu_user_cfg.max_size) is what
  // SETREGSET insists on; GETREGSET tells it by shortening the iovec.
  if (xstate_.empty()) xstate_.resize(std::max<size_t>(FpState::HostSize(), 16384));
  iovec iov{xstate_.data(), xstate_.size()};
  if (::ptrace(PTRACE_GETREGSET, tid_, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) != 0) return 0;
  return iov.iov_len;
}

Status PtraceContext::GetFpState(FpState& fp) {
  if (FpState::HostHasXsave()) {
    const size_t len = ReadXstate();
    if (len >= FpState::kXsaveHeaderEnd) {
      // The regset holds every user component (its software bytes need not
      // say so: they are zero on some kernels); `len` bounds them.
      fp.CopyFrom(xstate_.data(), len, FpState::HostFeatures());
      return {};
    }
  }
  user_fpregs_struct fx;
  if (::ptrace(PTRACE_GETFPREGS, tid_, nullptr, &fx) != 0) return Errno(errno);
  // SAFETY: user_fpregs_struct is the 512-byte FXSAVE image, read as bytes.
  fp.CopyFrom(reinterpret_cast<const uint8_t*>(&fx), sizeof(fx), FpState::kFeaturesFpSse);
  return {};
}

Status PtraceContext::SetFpState(const FpState& fp) {
  if (FpState::HostHasXsave()) {
    // Start from the thread's own image: it has the software bytes and the
    // size the kernel wants.
    const size_t len = ReadXstate();
    if (len >= FpState::kXsaveHeaderEnd) {
      fp.CopyTo(xstate_.data(), len, FpState::HostFeatures());
      iovec iov{xstate_.data(), len};
      if (::ptrace(PTRACE_SETREGSET, tid_, reinterpret_cast<void*>(NT_X86_XSTATE), &iov) == 0) {
        return {};
      }
    }
  }
  user_fpregs_struct fx{};
  // SAFETY: user_fpregs_struct is the 512-byte FXSAVE image, written as bytes.
  fp.CopyTo(reinterpret_cast<uint8_t*>(&fx), sizeof(fx), FpState::kFeaturesFpSse);
  if (::ptrace(PTRACE_SETFPREGS, tid_, nullptr, &fx) != 0) return Errno(errno);
  return {};
}

long PtraceContext::Inject(uint64_t gadget, long nr, long a0, long a1, long a2, long a3, long a4,
                           long a5) {
  const long args[6] = {a0, a1, a2, a3, a4, a5};
  // With an rseq registration, the host may move the thread from the gadget
  // to guest code; nothing filters that code's syscalls here but the guard.
  return InjectSyscall(tid_, as_->layout().entry + gadget, nr, args, &dead_, HasRseq(),
                       HasRseq() ? host_rseq_.addr + kRseqCsOffset : 0, &rseq_segv_);
}

long PtraceContext::ThreadSyscall(long nr, const long (&a)[6]) {
  static_assert(kAtomicUpdate32Call == stub::kStubAtomicUpdate32Call);
  if (nr != kAtomicUpdate32Call) {
    return Inject(kStubSyscallGadget, nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  }
  return InjectSyscall(tid_, as_->layout().entry + stub::kStubAtomicGadget, nr, a, &dead_,
                       HasRseq(), HasRseq() ? host_rseq_.addr + kRseqCsOffset : 0, &rseq_segv_,
                       /*no_syscall=*/true);
}

Result<ThreadHandle> PtraceContext::NewThread() {
  // The new thread shares this thread's stack pointer but never touches the
  // stack: it parks in a futex wait until a sentry thread seizes it.
  long tid = Inject(kStubForkGadget, SYS_clone, stub::kStubThreadCloneFlags, 0, 0, 0, 0, 0);
  if (tid <= 0) return Errno(tid < 0 ? static_cast<int>(-tid) : EAGAIN);
  return ThreadHandle{static_cast<int>(tid)};
}

Result<std::shared_ptr<AddressSpace>> PtraceContext::ForkAddressSpace() {
  // CLONE_PARENT: the zygote, not this stub, becomes the parent and reaps it.
  // The child, untraced until attached, starts without our rseq
  // registration (Context::Rseq).
  bool rseq_dropped;
  const RseqArea rseq = SuspendRseq(&rseq_dropped);
  if (!rseq_dropped) return Errno(EAGAIN);
  stub::StubAddressSpace::KeptFiles kept;
  // Our parent is the child's: it dies with it as we do.
  const long pid = stub::ForkTied(as_->dies_with(), as_->layout().entry, [&](long flags) {
    long pid;
    {
      absl::MutexLock k(&as_->kept_mutex());
      pid = Inject(kStubForkGadget, SYS_clone, CLONE_PARENT | SIGCHLD | flags, 0, 0, 0, 0, 0);
      kept = as_->kept_files();
    }
    RestoreRseq(rseq);
    return pid;
  });
  if (pid < 0) return Errno(static_cast<int>(-pid));
  auto child = std::make_shared<PtraceAddressSpace>(static_cast<pid_t>(pid), as_->layout());
  child->set_dies_with(as_->dies_with());
  child->InheritKeptFiles(std::move(kept));
  return std::shared_ptr<AddressSpace>(std::move(child));
}

}  // namespace seedvisor::platform::ptrace
