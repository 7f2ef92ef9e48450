// KvmContext: a stub thread's life (Create, the destructor, Alive,
// Interrupt), the events and calls it posts and waits for through its comm
// page (Post, WaitEvent, StubCall) and the host calls made for the guest
// (ThreadSyscall).
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "platform/kvm/kvm_address_space.h"
#include "platform/kvm/kvm_guest.h"
#include "platform/kvm/kvm_host_maps.h"
#include "platform/stub/await_slot_release.h"

namespace seedvisor::platform::kvm {
namespace {

pid_t HostTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

std::atomic<uint32_t>* Word(uint32_t* w) {
  // SAFETY: a 4-byte aligned word of the shared comm page, accessed atomically.
  return reinterpret_cast<std::atomic<uint32_t>*>(w);
}

}  // namespace

KvmContext::KvmContext(std::shared_ptr<KvmAddressSpace> as, pid_t tid, int slot)
    : as_(std::move(as)),
      pool_(as_->vcpus()),
      tid_(tid),
      slot_(slot),
      owner_(HostTid()),
      stub_spin_(as_->shared().stub_spin_max) {
  as_->contexts().Register(owner_, this);
}

kvm_run* KvmContext::mirror() const {
  // SAFETY: the mirror is an 8-aligned copy of kvm_run's first kMirrorSize
  // bytes in the slot's comm page; only fields below that size are used.
  return reinterpret_cast<kvm_run*>(as_->slot_base(slot_) + kMirrorOff);
}

uint64_t KvmContext::PutArgs(const void* data, size_t len, size_t off) {
  std::memcpy(as_->slot_base(slot_) + kArgsOff + off, data, len);
  return SlotAddr(slot_) + kArgsOff + off;
}

void KvmContext::GetArgs(void* data, size_t len, size_t off) const {
  std::memcpy(data, as_->slot_base(slot_) + kArgsOff + off, len);
}

absl::StatusOr<std::unique_ptr<KvmContext>> KvmContext::Create(std::shared_ptr<KvmAddressSpace> as,
                                                               pid_t tid) {
  int slot = as->slots().Take(tid);
  if (slot < 0) slot = as->slots().Alloc();
  if (slot < 0) return absl::ResourceExhaustedError("kvm: no free thread slot");
  CommPage* c = as->comm(slot);
  c->state = kStateIdle;
  c->vcpu_fd = 0;
  c->sentry_waiting = c->stub_waiting = 0;
  c->urg_set = uint64_t{1} << (SIGURG - 1);
  c->zero_ts[0] = c->zero_ts[1] = 0;
  c->stub_spin = 0;
  bool ok = false;
  {
    stub::Injector inj(tid, as->layout().entry);
    Registers r;
    if (inj.ok() && ::ptrace(PTRACE_GETREGS, tid, nullptr, &r) == 0) {
      r.rip = as->layout().entry + kStubEnter;
      r.rdi = SlotAddr(slot);
      r.rsp = SlotAddr(slot) + kSlotSize - 64;
      r.orig_rax = static_cast<uint64_t>(-1);  // no syscall restart
      ok = ::ptrace(PTRACE_SETREGS, tid, nullptr, &r) == 0;
    }
  }  // detached: the thread runs into `enter` and posts its first event
  std::unique_ptr<KvmContext> ctx(new KvmContext(as, tid, slot));
  if (!ok || !ctx->WaitEvent()) {
    ctx->dead_ = true;
    return absl::InternalError(absl::StrCat("kvm: starting stub thread ", tid, " failed"));
  }
  // A vCPU of its own while the VM has fewer than max_vcpus, its id taken
  // and held in the same step (made here, as a thread's always was;
  // failures fail the clone); else one when it runs. Its FP state is
  // loaded when it first runs.
  {
    VcpuPool& pool = ctx->pool_;
    absl::MutexLock l(&pool.mu);
    if (pool.made >= as->shared().max_vcpus) return ctx;
    ctx->vcpu_ = pool.made++;
    pool.claims[ctx->vcpu_].runner = ctx.get();
  }
  if (absl::Status s = ctx->MakeHeldVcpu(); !s.ok()) {
    ctx->dead_ = !ctx->Alive();
    return s;
  }
  ctx->ReleaseVcpu();
  return ctx;
}

KvmContext::~KvmContext() {
  as_->contexts().Unregister(owner_);
  {
    // A vCPU that holds this thread's FP state holds nobody's now; one
    // that another thread holds is moving it out: that thread uses this
    // one (and its slot) until it has.
    absl::MutexLock l(&pool_.mu);
    AwaitFpReachableLocked();
    if (fp_vcpu_ >= 0) pool_.claims[fp_vcpu_].fp_owner = nullptr;
    fp_vcpu_ = -1;
  }
  bool gone = dead_ && !Alive();
  if (!dead_ && Post(kStateExit)) {
    gone = stub::AwaitSlotRelease(Word(&comm()->state), kStateGone, [this] { return Alive(); });
  }
  if (gone) as_->slots().Free(slot_);  // else leak it: a stuck thread still owns it
}

bool KvmContext::Alive() const {
  pollfd p{as_->process().pidfd(), POLLIN, 0};
  if (p.fd >= 0 && poll(&p, 1, 0) > 0) return false;
  return syscall(SYS_tgkill, as_->host_pid(), tid_, 0) == 0;
}

void KvmContext::TuneStubSpin(CommPage* c) {
  // post_tsc lies in the platform's region, which the guest cannot write
  // (supervisor-only pages); the stub caps the spin anyway.
  const uint64_t now = systrap::ReadTsc();
  const uint64_t posted = c->post_tsc;
  stub_spin_.Record(stub_budget_, now > posted ? now - posted : 0);
  stub_budget_ = systrap::CpuContended() ? 0 : stub_spin_.NextBudget();
  c->stub_spin = stub_budget_;
}

bool KvmContext::Post(uint32_t state) {
  CommPage* c = comm();
  if (state != kStateExit) TuneStubSpin(c);
  Word(&c->state)->store(state, std::memory_order_seq_cst);  // before we look at stub_waiting
  if (Word(&c->stub_waiting)->load(std::memory_order_seq_cst)) {
    ++stub_sleeps_;
    syscall(SYS_futex, Word(&c->state), FUTEX_WAKE, 1, nullptr, nullptr, 0);
  }
  return true;
}

bool KvmContext::WaitEvent() {
  CommPage* c = comm();
  auto* w = Word(&c->state);
  auto* waiting = Word(&c->sentry_waiting);
  for (;;) {
    waiting->store(1, std::memory_order_seq_cst);  // before we look at state
    uint32_t s = w->load(std::memory_order_seq_cst);
    if (s == kStateEvent) {
      waiting->store(0, std::memory_order_relaxed);
      return true;
    }
    timespec ts{0, 100'000'000};
    long r = syscall(SYS_futex, w, FUTEX_WAIT, s, &ts, nullptr, 0);
    waiting->store(0, std::memory_order_relaxed);
    if (r < 0 && errno == ETIMEDOUT && !Alive()) return false;
  }
}

long KvmContext::StubCall(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  if (dead_) return -ESRCH;
  CommPage* c = comm();
  c->call_nr = static_cast<uint64_t>(nr);
  const long args[6] = {a0, a1, a2, a3, a4, a5};
  for (int i = 0; i < 6; ++i) c->call_args[i] = static_cast<uint64_t>(args[i]);
  Post(kStateCall);
  if (!WaitEvent()) {
    dead_ = true;
    return -ESRCH;
  }
  return static_cast<long>(c->call_ret);
}

void KvmContext::Interrupt() {
  // Pending until a KVM_RUN sees it (the stub blocks SIGURG outside one).
  syscall(SYS_tgkill, as_->host_pid(), tid_, SIGURG);
}

int64_t KvmContext::CpuTimeNs() const { return as_->process().ThreadCpuTimeNs(tid_); }

int64_t KvmContext::OwnCpuClockNs(bool whole_process) {
  // The stub thread reads its clock into the slot's argument area.
  const timespec zero{};
  const uint64_t at = PutArgs(&zero, sizeof(zero));
  const long r = StubCall(SYS_clock_gettime,
                          whole_process ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_THREAD_CPUTIME_ID,
                          static_cast<long>(at));
  if (r != 0) return r < 0 ? r : -EIO;
  timespec ts;
  GetArgs(&ts, sizeof(ts));
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long KvmContext::ThreadSyscall(long nr, const long (&args)[6]) {
  if (nr == kAtomicUpdate32Call) {
    // The stub maps guest memory at the guest's addresses (the VM's
    // memslots), so its lock cmpxchg acts on the guest's word.
    static_assert(kAtomicUpdate32Call == stub::kStubAtomicUpdate32Call);
    return StubCall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
  }
  if (nr != kSysGetcpu) return -ENOSYS;
  unsigned cpu = 0, node = 0;
  getcpu(&cpu, &node);
  const uint64_t where[2] = {static_cast<uint64_t>(args[0]), static_cast<uint64_t>(args[1])};
  const unsigned what[2] = {cpu, node};
  for (int i = 0; i < 2; ++i) {
    if (where[i] == 0) continue;
    Result<size_t> n = as_->Write(UserAddr(where[i]), &what[i], sizeof(what[i]));
    if (!n.ok() || *n != sizeof(what[i])) return -EFAULT;
  }
  return 0;
}

}  // namespace seedvisor::platform::kvm
