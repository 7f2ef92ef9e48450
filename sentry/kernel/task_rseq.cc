// rseq(2): restartable sequences (kernel/rseq.c).
//
// The host kernel does the work: the guest's area is registered, with the
// guest's own arguments, on the host thread that runs the guest's code
// (platform::Context::Rseq), so cpu_id and friends are the host's truth
// and critical sections abort on every preemption, migration and host
// signal, as on Linux. The sentry keeps the registration (rseq_) to give
// it to a new context (a fork child's, a sandbox fork's), to drop it on
// exec and exit, and to abort a critical section when it builds a signal
// frame itself: a host signal that stops the thread (ptrace's signal-
// delivery-stop, the kick that brings a task back to deliver a guest
// signal) aborts nothing on the host, since the host never builds that
// frame.
//
// Why this is sound for the platforms: the area lies in guest memory, so
// the guest controls rseq_cs and can make the host move its stub thread
// from stub code to guest code (it may always jump into stub code itself,
// so that alone gives it nothing). What it must never get is to run while
// the sentry lets the thread's syscalls through: platform::Context::Rseq
// says how the platforms prevent that (no host fork or detach of a
// registered thread, injected calls checked at their seccomp or syscall
// stop).
//
// Limits: a guest whose area or rseq_cs descriptor becomes invalid (an
// unmapped area, a bad signature) while its stub thread runs stub code
// (systrap's handler, between a trap and its answer) loses the whole
// process at the host's next check (rseq_handle_notify_resume() forces a
// SIGSEGV that the handler blocks, so the host kills the stub with it).
// The sentry asks the host what the stub died of (AddressSpace::
// HostDeathSignal) and ends the guest's process with SIGSEGV, as Linux
// does when no handler is installed; Linux 6.18 delivers that SIGSEGV to
// a handler if there is one, which the sandbox cannot once the host
// process is gone. An exiting thread whose area is already gone takes its
// process along the same way.
#include <linux/rseq.h>
#include <signal.h>

#include <cstddef>
#include <cstdint>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {
namespace {

// The kernel's struct rseq offsets (uapi/linux/rseq.h).
constexpr uint64_t kRseqCsOffset = 8;
constexpr uint64_t kRseqFlagsOffset = 16;
constexpr uint32_t kOrigRseqSize = 32;

// struct rseq_cs, as the guest wrote it.
struct RseqCs {
  uint32_t version;
  uint32_t flags;
  uint64_t start_ip;
  uint64_t post_commit_offset;
  uint64_t abort_ip;
};
static_assert(sizeof(RseqCs) == 32);

}  // namespace

SyscallReturn Task::Rseq(UserAddr area, uint32_t len, int flags, uint32_t sig) {
  // The host checks every argument as Linux does (sys_rseq()) on our
  // thread, whose registration mirrors rseq_, except the one thing it
  // cannot know: where the guest's address space ends. Linux's order:
  // a registered thread's EINVAL/EPERM/EBUSY first, then the area's
  // length and alignment (EINVAL), then access_ok() (EFAULT).
  if (flags == 0 && rseq_.addr.IsNull()) {
    const bool orig = len == kOrigRseqSize;
    const bool len_ok = orig ? area.value() % kOrigRseqSize == 0
                             : len > kOrigRseqSize && area.value() % alignof(struct rseq) == 0;
    if (len_ok) {
      const uint64_t top = mm_->address_space().UserTop().value();
      if (area.value() > top || len > top - area.value()) return Errno(EFAULT);
    }
  }
  const long r = ctx_->Rseq(area, len, flags, sig);
  if (r < 0) return Errno(static_cast<int>(-r));
  if (flags & RSEQ_FLAG_UNREGISTER) {
    rseq_ = RseqState{};
  } else {
    rseq_ = RseqState{area, len, sig};
  }
  return 0;
}

void Task::SyncRseq() {
  // A new context: its host thread holds no registration yet (the
  // platforms never let a host fork inherit one). The arguments were the
  // host's to check once; refusing them now means the area is gone.
  if (ctx_->Rseq(rseq_.addr, rseq_.len, 0, rseq_.sig) != 0) {
    rseq_ = RseqState{};
    siginfo_t info{};
    info.si_signo = SIGSEGV;
    info.si_code = SI_KERNEL;
    ForceSignal(info);
  }
}

void Task::DropRseq() {
  if (ctx_ != nullptr) ctx_->DropRseq();
  rseq_ = RseqState{};
}

bool Task::RseqAbortForSignal() {
  // rseq_signal_deliver() -> rseq_ip_fixup(): before the frame is built,
  // a thread inside its critical section goes to the abort handler; the
  // descriptor pointer is cleared either way. Any inconsistency is the
  // guest's SIGSEGV (the caller forces it).
  if (rseq_.addr.IsNull()) return true;
  uint64_t cs_ptr;
  if (!CopyInObj(rseq_.addr + kRseqCsOffset, &cs_ptr).ok()) return false;
  if (cs_ptr == 0) return true;
  const uint64_t top = mm_->address_space().UserTop().value();
  if (cs_ptr >= top) return false;
  RseqCs cs;
  if (!CopyInObj(UserAddr(cs_ptr), &cs).ok()) return false;
  // rseq_get_rseq_cs()'s checks.
  if (cs.start_ip >= top || cs.start_ip + cs.post_commit_offset >= top || cs.abort_ip >= top ||
      cs.version > 0 || cs.start_ip + cs.post_commit_offset < cs.start_ip ||
      cs.abort_ip - cs.start_ip < cs.post_commit_offset) {
    return false;
  }
  uint32_t sig;
  if (!CopyInObj(UserAddr(cs.abort_ip - sizeof(uint32_t)), &sig).ok() || sig != rseq_.sig) {
    return false;
  }
  const uint64_t zero = 0;
  if (regs_.rip - cs.start_ip >= cs.post_commit_offset) {
    return CopyOutObj(rseq_.addr + kRseqCsOffset, zero).ok();  // not inside: clear_rseq_cs()
  }
  // rseq_need_restart(): flags, in the descriptor or the area, are
  // deprecated or unknown, and refused.
  uint32_t area_flags;
  if (cs.flags != 0 || !CopyInObj(rseq_.addr + kRseqFlagsOffset, &area_flags).ok() ||
      area_flags != 0) {
    return false;
  }
  if (!CopyOutObj(rseq_.addr + kRseqCsOffset, zero).ok()) return false;
  regs_.rip = cs.abort_ip;
  return true;
}

}  // namespace seedvisor::sentry
