// SystrapContext: a stub thread's life (Create, the destructor, Alive,
// Wedged, Interrupt), the stub's own calls (StubCall) and the FP state in
// its signal frame.
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "platform/stub/await_slot_release.h"
#include "platform/systrap/syscall_patch.h"
#include "platform/systrap/systrap_address_space.h"
#include "platform/systrap/systrap_context_internal.h"
namespace seedvisor::platform::systrap {
namespace {

pid_t HostTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

}  // namespace

SystrapContext::SystrapContext(std::shared_ptr<SystrapAddressSpace> as, pid_t tid, int slot)
    : as_(std::move(as)), tid_(tid), slot_(slot), owner_(HostTid()) {
  as_->contexts().Register(owner_, this);
}

absl::StatusOr<std::unique_ptr<SystrapContext>> SystrapContext::Create(
    std::shared_ptr<SystrapAddressSpace> as, pid_t tid) {
  int slot = as->slots().Take(tid);
  if (slot < 0) slot = as->slots().Alloc();
  if (slot < 0) return absl::ResourceExhaustedError("systrap: no free stub thread slot");
  uint8_t* s = as->slot(slot);
  std::memset(s, 0, kCommSize);
  const uint64_t stub_slot = SystrapAddressSpace::StubSlot(slot);
  // Arguments for the injected calls, in the slot's comm page.
  stack_t ss{};
  // SAFETY: a stub address, passed only to the stub's sigaltstack().
  ss.ss_sp = reinterpret_cast<void*>(stub_slot + kCommSize);
  ss.ss_size = kSlotSize - kCommSize;
  std::memcpy(s + 64, &ss, sizeof(ss));
  bool ok = false;
  {
    Injector inj(tid, as->layout().entry);
    Registers r;
    if (inj.ok() && ::ptrace(PTRACE_GETREGS, tid, nullptr, &r) == 0) {
      // `enter` sets the thread's sigaltstack and an empty signal mask itself
      // and traps into the handler. Its stack: the top of its own slot, so
      // that even a failed sigaltstack() (EPERM: a forked stub already runs
      // on its parent's, the same slot) puts the frame in this slot.
      r.rip = as->layout().entry + kStubEnter;
      r.rdi = stub_slot;
      r.rsp = stub_slot + kSlotSize - 64;
      r.orig_rax = static_cast<uint64_t>(-1);  // no syscall restart
      ok = ::ptrace(PTRACE_SETREGS, tid, nullptr, &r) == 0;
    }
  }  // detached: the thread runs into `enter` and posts its first event
  std::unique_ptr<SystrapContext> ctx(new SystrapContext(as, tid, slot));
  if (!ok || !ctx->WaitEvent(/*guest=*/false, ReadTsc(), /*stub_woken=*/false) ||
      !ctx->LoadFrame()) {
    ctx->dead_ = true;
    return absl::InternalError(absl::StrCat("systrap: starting stub thread ", tid, " failed"));
  }
  if (as->patching()) {
    // The fast entry saves the FP state as the kernel's frames do: the
    // same components, in the standard XSAVE layout, in the slot.
    uint8_t* p;
    uint64_t features;
    const size_t len = ctx->FrameFp(&p, &features);
    if (features != FpState::kFeaturesFpSse && kFastXsave + len + 4 <= kSlotSize) {
      ctx->xsave_size_ = len;
      ctx->xfeatures_ = features;
      ctx->fast_ok_ = true;
      ctx->fast_header()->xmask = features;
    }
  }
  return ctx;
}

SystrapContext::~SystrapContext() {
  as_->contexts().Unregister(owner_);
  // While it waits for kStateExit the thread may still return to user mode
  // (a futex wakeup): with an area the guest may since have unmapped, the
  // host would kill the whole stub for it (rseq_handle_notify_resume()).
  if (!dead_) DropRseq();
  bool gone = dead_;
  if (!dead_) {
    auto* w = StateWord(comm());
    w->store(kStateExit, std::memory_order_release);
    FutexWake(w);
    // Reuse the slot only once the thread has promised not to touch it.
    gone = stub::AwaitSlotRelease(w, kStateGone, [this] { return Alive(); });
  } else {
    gone = !Alive();
  }
  if (gone) as_->slots().Free(slot_);  // else leak it: a stuck thread still owns it
}

bool SystrapContext::Alive() const {
  // The pidfd turns readable once the stub process has exited, even while
  // its zombie still answers tgkill; tgkill sees a single thread's exit.
  pollfd p{as_->process().pidfd(), POLLIN, 0};
  if (p.fd >= 0 && poll(&p, 1, 0) > 0) return false;
  return syscall(SYS_tgkill, as_->host_pid(), tid_, 0) == 0;
}

bool SystrapContext::Wedged() {
  const int64_t since = kick_ns_.load(std::memory_order_acquire);
  if (since == 0) return false;
  if (MonotonicNs() - since < kWedgedNs) {
    Interrupt();  // signals do not get lost; this only costs a tgkill
    return false;
  }
  // The stub ignored the kick: it blocked SIGURG or sleeps in a futex of
  // its own choosing, which only a guest that ran the stub's code with its
  // own registers can make it do. Its address space dies; every task in it
  // sees a dead context and is killed.
  syscall(SYS_pidfd_send_signal, as_->process().pidfd(), SIGKILL, nullptr, 0);
  return true;
}

long SystrapContext::StubCall(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  if (dead_) return -ESRCH;
  CommPage* c = comm();
  c->call_nr = static_cast<uint64_t>(nr);
  const long args[6] = {a0, a1, a2, a3, a4, a5};
  for (int i = 0; i < 6; ++i) c->call_args[i] = static_cast<uint64_t>(args[i]);
  auto* w = StateWord(c);
  w->store(kStateCall, std::memory_order_seq_cst);  // before we look at stub_waiting
  // SAFETY: a 4-byte aligned word of the shared comm page, accessed atomically.
  if (reinterpret_cast<std::atomic<uint32_t>*>(&c->stub_waiting)->load(std::memory_order_seq_cst)) {
    FutexWake(w);
  }
  if (!WaitEvent(/*guest=*/false, ReadTsc(), /*stub_woken=*/false)) {
    dead_ = true;
    return -ESRCH;
  }
  return static_cast<long>(c->call_ret);
}

void SystrapContext::Interrupt() {
  int64_t none = 0;
  kick_ns_.compare_exchange_strong(none, MonotonicNs(), std::memory_order_acq_rel);
  syscall(SYS_tgkill, as_->host_pid(), tid_, kInterruptSignal);
}

size_t SystrapContext::FrameFp(uint8_t** fp, uint64_t* features) const {
  if (fast_) {
    // The fast entry's XSAVE of the components the kernel's frames hold.
    *fp = as_->slot(slot_) + kFastXsave;
    *features = xfeatures_;
    return xsave_size_;
  }
  // The kernel's frame: an XSAVE image when fpx_sw_bytes say so
  // (check_xstate_in_sigframe()), else FXSAVE only. The slot is guest-
  // writable: read each word once and keep the image inside the slot.
  uint8_t* p = as_->slot(slot_) + fp_off_;
  const size_t room = kSlotSize - fp_off_;
  uint32_t magic1, xstate_size;
  uint64_t xfeatures;
  std::memcpy(&magic1, p + FpState::kSwBytesOffset, sizeof(magic1));
  std::memcpy(&xfeatures, p + FpState::kSwBytesOffset + 8, sizeof(xfeatures));
  std::memcpy(&xstate_size, p + FpState::kSwBytesOffset + 16, sizeof(xstate_size));
  *fp = p;
  if (magic1 == kFpXstateMagic1 && xstate_size >= FpState::kXsaveHeaderEnd &&
      xstate_size + 4 <= room) {
    *features = xfeatures;
    return xstate_size;
  }
  *features = FpState::kFeaturesFpSse;
  return kFxsaveSize;
}

Status SystrapContext::GetFpState(FpState& fp) {
  if (dead_) return Errno(ESRCH);
  uint8_t* p;
  uint64_t features;
  const size_t len = FrameFp(&p, &features);
  fp.CopyFrom(p, len, features);
  return {};
}

Status SystrapContext::SetFpState(const FpState& fp) {
  if (dead_) return Errno(ESRCH);
  uint8_t* p;
  uint64_t features;
  const size_t len = FrameFp(&p, &features);
  fp.CopyTo(p, len, features);
  if (fast_) fp_dirty_ = true;  // the fast exit restores it (XRSTOR)
  return {};
}

int64_t SystrapContext::CpuTimeNs() const { return as_->process().ThreadCpuTimeNs(tid_); }

int64_t SystrapContext::OwnCpuClockNs(bool whole_process) {
  // The stub thread reads its clock into its slot (seccomp/stub_policy.cc
  // lets it), which the guest can write too: checked, and only the guest's
  // own reading depends on it.
  // SAFETY: a 16-byte aligned timespec inside this thread's slot of the
  // shared region; read once per field, its values checked.
  volatile timespec* ts = reinterpret_cast<volatile timespec*>(as_->slot(slot_) + kCpuClockOff);
  const uint64_t at = kRegionBase + static_cast<uint64_t>(slot_) * kSlotSize + kCpuClockOff;
  const long r = StubCall(SYS_clock_gettime,
                          whole_process ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID,
                          static_cast<long>(at), 0, 0, 0, 0);
  if (r != 0) return r < 0 ? r : -EIO;
  const int64_t sec = ts->tv_sec, nsec = ts->tv_nsec;
  if (sec < 0 || nsec < 0 || nsec >= 1000000000LL || sec > INT64_MAX / 1000000000LL - 1) {
    return -EIO;
  }
  return sec * 1000000000LL + nsec;
}

}  // namespace seedvisor::platform::systrap
