// The platform runs a guest task's user context until it needs the kernel.
//
// A Platform makes AddressSpaces (one per guest mm) and Contexts (one per
// guest thread). The sentry never runs guest code itself: it hands registers
// to Context::Run, which returns when the guest made a syscall, faulted, or
// was interrupted from another sentry thread.
//
//   auto as = platform.NewAddressSpace();
//   auto ctx = platform.Attach(*as, as->initial_thread());
//   Registers regs = ...;  // entry point, stack
//   for (;;) {
//     Stop stop = ctx->Run(regs);
//     if (stop.kind == StopKind::kSyscall) { ... regs.rax = result; }
//   }
//
// Threading rule: a Context is used only by the host thread that attached it,
// except Interrupt(), which any thread may call. AddressSpace mapping calls
// are made by a thread that holds a Context in that address space (the
// syscall's own task); Read/Write may be called from any thread.
#ifndef SEEDVISOR_PLATFORM_PLATFORM_H_
#define SEEDVISOR_PLATFORM_PLATFORM_H_

#include <signal.h>
#include <sys/user.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "platform/fp_state.h"
#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"

namespace seedvisor::platform {

using Registers = user_regs_struct;

enum class StopKind {
  kSyscall,    // regs.orig_rax holds the number; regs.rip is past the instruction
  kFault,      // a synchronous fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP); see info
  kInterrupt,  // Interrupt() was called, or a spurious host wakeup
  kDead,       // the host side of the context is gone (killed from outside)
};

struct Stop {
  StopKind kind = StopKind::kInterrupt;
  siginfo_t info{};
};

// An opaque handle for a not-yet-attached platform thread.
struct ThreadHandle {
  int host_tid = 0;
};

class AddressSpace {
 public:
  virtual ~AddressSpace() = default;

  // Maps [addr, addr+len) exactly (MAP_FIXED semantics). `host_fd` < 0 means
  // anonymous memory. `flags` is MAP_PRIVATE or MAP_SHARED (plus
  // MAP_ANONYMOUS, MAP_NORESERVE, MAP_GROWSDOWN, MAP_POPULATE as given).
  virtual Status Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                     uint64_t offset) = 0;
  // Map for a host file whose data nothing in the sandbox can change (a
  // read-only host file: FileDescription::DataImmutableInSandbox). The
  // platform may keep such a file open in the guest's host process so that
  // mapping it again is cheap (ld.so maps each library several times).
  virtual Status MapImmutableFile(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                                  uint64_t offset) {
    return Map(addr, len, prot, flags, host_fd, offset);
  }
  virtual Status Unmap(UserAddr addr, uint64_t len) = 0;
  virtual Status Protect(UserAddr addr, uint64_t len, int prot) = 0;
  virtual Status Advise(UserAddr addr, uint64_t len, int advice) = 0;
  virtual Status Sync(UserAddr addr, uint64_t len, int flags) = 0;
  // Moves/resizes a mapping to exactly new_addr (MREMAP_MAYMOVE|MREMAP_FIXED).
  virtual Status Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr,
                       uint64_t new_len) = 0;

  // Copies between guest memory and the sentry, honouring page protections.
  // Returns the number of bytes copied before the first fault; EFAULT if none.
  virtual Result<size_t> Read(UserAddr addr, void* dst, size_t len) = 0;
  virtual Result<size_t> Write(UserAddr addr, const void* src, size_t len) = 0;
  // Writes even to read-only pages (as a debugger or the ELF loader does).
  virtual Status WriteForce(UserAddr addr, const void* src, size_t len) = 0;
  // Reads even PROT_NONE pages (a debugger's FOLL_FORCE read); the bytes
  // copied before the first page that is not mapped, EFAULT if none.
  virtual Result<size_t> ReadForce(UserAddr addr, void* dst, size_t len) {
    return Read(addr, dst, len);
  }

  // Guest mappings must lie in [kMinAddr, UserTop()). Everything the
  // platform itself keeps in the guest's host address space (a stub's code,
  // data, shared region) lies at or above it, as the kernel lies above
  // TASK_SIZE: the sentry never maps, unmaps, protects, advises or copies
  // there for the guest, and a guest stopped with rip there gets SIGSEGV.
  virtual UserAddr UserTop() const = 0;
  // The vDSO visible to the guest (AT_SYSINFO_EHDR), or null.
  virtual UserAddr VdsoBase() const = 0;
  // Host pid of the process that holds this address space (for debugging and
  // /proc only; never shown to the guest).
  virtual int host_pid() const = 0;
  // The thread a new address space comes with, to Attach() to.
  virtual ThreadHandle initial_thread() const = 0;
  // CPU time consumed by guest code in this address space, all threads.
  virtual int64_t CpuTimeNs() const = 0;
  // The peak resident set size of this address space, in KiB.
  virtual int64_t MaxRssKb() const = 0;
  // After a context of it reported kDead: the signal the host killed the
  // process holding this address space with, if the host can say; else 0.
  // A systrap stub dies of SIGSEGV when the host's rseq check fails on a
  // stub thread inside the stub's handler (the guest's rseq_cs or area is
  // invalid: rseq_handle_notify_resume() forces a SIGSEGV the handler
  // blocks), which is the guest's own SIGSEGV (sentry/kernel/task_rseq.cc).
  // `context_died`: the platform reported a context of this address space
  // dead, so the process is dying: wait briefly for its last thread and the
  // host's reap. Otherwise (no context could be made) it may well be alive:
  // ask without waiting.
  virtual int HostDeathSignal(bool /*context_died*/) const { return 0; }
  // Sandbox fork (sentry/sfork): in a host fork of the sentry, this object
  // describes the seed's address space. Lets go of it without touching it:
  // no kill, no write into shared state; afterwards the object only dies.
  virtual void AbandonInForkChild() {}
  // A guest debugger traces a task of this address space (it is in a
  // ptrace-stop): puts back any guest text the platform rewrote (systrap's
  // patched syscall sites) and rewrites none from now on, so that the
  // tracer peeks, pokes and single-steps the guest's own bytes. Call on the
  // host thread of a context of this address space.
  virtual void RestoreGuestText() {}
};

class Context {
 public:
  virtual ~Context() = default;

  virtual Stop Run(Registers& regs) = 0;
  // Makes Run() return kInterrupt soon; callable from any thread.
  virtual void Interrupt() = 0;

  // The guest thread's FP/SSE/AVX state, between two Run()s. Every platform
  // moves the full XSAVE image (x87, SSE, AVX, AVX-512, PKRU: whatever the
  // host's XCR0 enables; see fp_state.h) where the CPU has XSAVE, the
  // FXSAVE image otherwise:
  //   ptrace   PTRACE_GETREGSET/SETREGSET NT_X86_XSTATE (the stub thread
  //            holds the state: it runs the guest code itself)
  //   systrap  the fpstate of the host signal frame in the thread's slot,
  //            which the kernel restores at the stub's rt_sigreturn
  // Both cost a copy (systrap) or a ptrace call (ptrace): Run() never does
  // this itself, so the sentry calls them only when it needs the state
  // (fork/clone, signal delivery and return, exec, parking a task).
  virtual Status GetFpState(FpState& fp) = 0;
  virtual Status SetFpState(const FpState& fp) = 0;

  // A new platform thread in this context's address space, for a CLONE_VM task.
  virtual Result<ThreadHandle> NewThread() = 0;
  // A copy-on-write copy of this context's address space, for fork().
  virtual Result<std::shared_ptr<AddressSpace>> ForkAddressSpace() = 0;

  virtual AddressSpace& address_space() = 0;

  // rseq(2) on the host thread that runs this context's guest code, with
  // the guest's own arguments: the host kernel then keeps the guest's
  // struct rseq true (cpu_id_start, cpu_id, node_id, mm_cid of the CPU the
  // thread runs on) and aborts its critical sections on preemption,
  // migration and host signals, as Linux does for a native thread. The
  // caller checks that `area` lies below UserTop(); the host checks the
  // rest (flags, length, alignment, signature, EBUSY) exactly as for a
  // native thread. Returns the host's result, 0 or -errno.
  //
  // A registered host thread must never run stub code where the guest's
  // rseq_cs could redirect it to guest code with host syscalls within
  // reach: the platforms never fork or detach such a thread (ForkAddress-
  // Space drops the registration around its host fork, a context drops it
  // before its thread ends), and they check that an injected call is the
  // call they made (stub/injector.h).
  long Rseq(UserAddr area, uint32_t len, int flags, uint32_t sig) {
    const long args[6] = {static_cast<long>(area.value()), static_cast<long>(len), flags,
                          static_cast<long>(sig), 0, 0};
    const long r = ThreadSyscall(kSysRseq, args);
    if (r == 0) {
      host_rseq_ = (flags & kRseqFlagUnregister) ? RseqArea{} : RseqArea{area.value(), len, sig};
    }
    return r;
  }
  // getcpu(2) made by the host thread that runs this context's guest code,
  // writing into guest memory at `cpu` and `node` (either may be null; the
  // caller checks that they lie below UserTop()): the CPU the guest thread
  // ran on, as its rseq area and the vDSO say, not the sentry's. Returns 0
  // or -errno (EFAULT for an unwritable pointer, as Linux).
  long Getcpu(UserAddr cpu, UserAddr node) {
    const long args[6] = {static_cast<long>(cpu.value()), static_cast<long>(node.value()), 0, 0,
                          0, 0};
    return ThreadSyscall(kSysGetcpu, args);
  }
  // One atomic read-modify-write of the 4-aligned 32-bit guest word at
  // `addr`, made in the guest's own address space by this context's host
  // thread with `lock cmpxchg` (stub_common_amd64.inc, ATOMIC_UPDATE_32),
  // as Linux's futex code updates user words: while (old & if_mask) ==
  // if_value, the word becomes ((old & and_mask) ^ xor_mask) + add, else it
  // is left alone. Read/Write are copies, not atomic against guest threads
  // on other CPUs; FUTEX_WAKE_OP's second word, the robust-list owner-died
  // mark and a PI futex's FUTEX_WAITERS bit go through here instead.
  // The caller checks that `addr` lies below UserTop(). Returns the old
  // value (0 .. 2^32-1) or -errno (-EFAULT for a word not mapped writable).
  struct WordUpdate {
    uint32_t if_mask = 0, if_value = 0;
    uint32_t and_mask = ~0u, xor_mask = 0, add = 0;
  };
  long AtomicUpdate32(UserAddr addr, const WordUpdate& u) {
    const long args[6] = {static_cast<long>(addr.value()), u.if_mask, u.if_value,
                          u.and_mask, u.xor_mask, u.add};
    return ThreadSyscall(kAtomicUpdate32Call, args);
  }
  // Sets bit `bit` (0-31) of that word atomically (a PI futex's
  // FUTEX_WAITERS, as futex_lock_pi_atomic() does with cmpxchg). Returns 0
  // or -errno.
  long AtomicSetBit32(UserAddr addr, int bit) {
    const uint32_t b = 1u << (bit & 31);
    const long r = AtomicUpdate32(addr, WordUpdate{.and_mask = ~b, .xor_mask = b});
    return r < 0 ? r : 0;
  }
  // Whether the host thread holds a registration (a new context's holds
  // none: the task registers its area again before it runs).
  bool HasRseq() const { return host_rseq_.addr != 0; }
  // Unregisters the host thread's area, if any, before the thread forks or
  // ends; false if the host refused (the area is no longer writable).
  bool DropRseq() {
    if (host_rseq_.addr == 0) return true;
    const RseqArea a = host_rseq_;
    return Rseq(UserAddr(a.addr), a.len, kRseqFlagUnregister, a.sig) == 0;
  }

  // The platform thread this context drives (sandbox fork picks a parked
  // one of a seed's address space to copy it).
  virtual ThreadHandle thread() const = 0;
  // CPU time this context's guest thread has consumed, as the host's
  // scheduler last accounted it (/proc/PID/task/TID/schedstat): behind a
  // thread that is on a host CPU now, as a systrap or KVM stub spinning for
  // the sentry's answer is, it lags by up to a scheduler tick (4 ms at
  // HZ=250). For clocks of other tasks, CPU-time timers and limits.
  virtual int64_t CpuTimeNs() const = 0;
  // The host thread's own CPU clock read by that thread itself, so exact:
  // CLOCK_THREAD_CPUTIME_ID, or with `whole_process` its process's
  // (CLOCK_PROCESS_CPUTIME_ID: its own time exact, its other threads' as
  // the scheduler last accounted them, as Linux gives a thread its process
  // clock). For the guest's reads of its own clocks; only between two
  // Run()s, from the sentry thread that drives this context. The platform
  // may take it from memory the guest can write (systrap's slot): never
  // for a limit. Nanoseconds, or -errno.
  virtual int64_t OwnCpuClockNs(bool whole_process) {
    // A thread stopped for the sentry (ptrace) has its time accounted.
    return whole_process ? address_space().CpuTimeNs() : CpuTimeNs();
  }

 protected:
  static constexpr long kSysRseq = 334;    // rseq(2) on x86-64
  static constexpr long kSysGetcpu = 309;  // getcpu(2) on x86-64
  // ThreadSyscall's number for AtomicUpdate32, which is no host syscall
  // (stub_layout.h: kStubAtomicUpdate32Call); args: the word's address,
  // if_mask, if_value, and_mask, xor_mask, add.
  static constexpr long kAtomicUpdate32Call = -2;
  static constexpr uint64_t kRseqCsOffset = 8;  // struct rseq's rseq_cs
  static constexpr int kRseqFlagUnregister = 1;  // RSEQ_FLAG_UNREGISTER
  struct RseqArea {
    uint64_t addr = 0;
    uint32_t len = 0;
    uint32_t sig = 0;
  };
  // One host syscall made by this context's own host thread, between two
  // Run()s; the raw result (-errno on failure).
  virtual long ThreadSyscall(long nr, const long (&args)[6]) = 0;
  // Around a host fork of this thread's process: the child must not
  // inherit the registration (it runs stub code, untraced, until it is
  // attached). Drop returns what to Restore afterwards.
  RseqArea SuspendRseq(bool* ok) {
    RseqArea saved = host_rseq_;
    *ok = DropRseq();
    return saved;
  }
  void RestoreRseq(const RseqArea& saved) {
    if (saved.addr != 0) Rseq(UserAddr(saved.addr), saved.len, 0, saved.sig);
  }

  RseqArea host_rseq_;  // what the host thread holds
};

// A new image's address space and its first thread's context (Platform::NewExecContext).
struct ExecContext {
  std::shared_ptr<AddressSpace> as;
  std::unique_ptr<Context> ctx;
};

// A copy of a seed's address space in a forked sentry (Platform::TakeSeedCopy).
struct ForkedAddressSpace {
  std::shared_ptr<AddressSpace> as;
  std::vector<ThreadHandle> threads;  // parked; threads[0] is the initial one
};

class Platform {
 public:
  virtual ~Platform() = default;
  virtual std::string_view name() const = 0;
  // Kills every host process of this platform (zygote and stubs) and reaps
  // them, for a sentry that exits without destroying its platform (`seedsc
  // do` leaves its kernel to the process exit): none is left a zombie for
  // the host's pid 1. The platform is unusable afterwards.
  virtual void StopHostProcesses() {}
  // The host process group of a booted sentry's zygote and stubs, which a
  // sandbox's end kills and waits for (sentry::EndHostProcesses), or -1
  // (no host processes; a forked sentry's are in its anchor's group, which
  // sentry/sfork ends).
  virtual pid_t HostProcessGroup() const { return -1; }

  // An empty address space (only the platform's reserved mappings).
  virtual absl::StatusOr<std::shared_ptr<AddressSpace>> NewAddressSpace() = 0;
  // Binds `thread` of `as` to the calling host thread.
  virtual absl::StatusOr<std::unique_ptr<Context>> Attach(std::shared_ptr<AddressSpace> as,
                                                          ThreadHandle thread) = 0;
  // For execve(2) by the task that `current` (attached to the calling host
  // thread; null for a task's first image) runs: an empty address space,
  // as NewAddressSpace() makes, with its initial thread attached to the
  // calling thread. `current` is left as it was. A platform may make it
  // from `current` (the stub platforms fork its stub and empty the copy, so
  // that the files its stub keeps open come along:
  // StubAddressSpace::MapImmutableFile).
  virtual absl::StatusOr<ExecContext> NewExecContext(Context* current) {
    (void)current;
    absl::StatusOr<std::shared_ptr<AddressSpace>> as = NewAddressSpace();
    if (!as.ok()) return as.status();
    absl::StatusOr<std::unique_ptr<Context>> ctx = Attach(*as, (*as)->initial_thread());
    if (!ctx.ok()) return ctx.status();
    return ExecContext{std::move(*as), std::move(*ctx)};
  }

  // ---- Sandbox fork (sentry/sfork), in the seed, ahead of the host fork ----
  // The seed makes the host processes its next fork needs while it is
  // quiesced, off the fork's path (sentry/sfork, "spares"); the forked
  // sentry only adopts them.
  //
  // Whether only the seed's own task threads may touch its stub threads (on
  // ptrace each is traced by its task's thread for life, and a thread has
  // one tracer): then sentry/sfork also has every parked task save its FP
  // state on its own thread (Task::SaveFpState: only the tracer can read
  // it). PrepareSeedFork runs on a parked task's thread on every platform.
  virtual bool SeedForkOnTaskThreads() const { return false; }
  // A seed may hold several spares at once (each for one fork), each named
  // by the process group its fork's host processes join (`pgid`, the
  // fork's anchor): every call below names the spare it is about.
  //
  // The zygote of spare `pgid`: a host process in process group `pgid`
  // (the fork's anchor group), ready to fork that sandbox's stubs.
  virtual absl::Status PrepareForkZygote(pid_t pgid) {
    (void)pgid;
    return absl::UnimplementedError(
        absl::StrCat("sandbox fork is not supported on the ", std::string(name()), " platform yet"));
  }
  // On the host thread that drives `ctx` (a parked task of the quiesced
  // seed): a copy-on-write copy of ctx's address space for the next fork, as
  // a new host process in process group `pgid`, traced by nobody, with
  // `threads` parked threads (one per task of the address space). The seed's
  // stub thread stays as it was.
  virtual absl::Status PrepareSeedFork(Context& ctx, pid_t pgid, int threads) {
    (void)ctx, (void)pgid, (void)threads;
    return absl::UnimplementedError("sandbox fork: no PrepareSeedFork");
  }
  // After the host fork that used spare `pgid`, in the seed, whatever
  // became of it, or when the seed drops that spare: if `child_took_them`,
  // the forked sentry owns what PrepareForkZygote and PrepareSeedFork made
  // for it (let go of it without touching it); otherwise kill it.
  virtual void FinishSeedFork(pid_t pgid, bool child_took_them) { (void)pgid, (void)child_took_them; }

  // ---- Sandbox fork (sentry/sfork), called in the forked sentry only ----
  // The platform object is the seed's copy: make it this sentry's own,
  // with spare `pgid`. The seed's host processes (zygote, stubs) and its
  // other spares (its own, or in-flight siblings') are never killed or
  // written; this sentry only closes its copies of their fds. Returns the
  // zygote of spare `pgid`, now this sentry's.
  virtual absl::StatusOr<pid_t> AdoptInForkChild(pid_t pgid) {
    (void)pgid;
    return absl::UnimplementedError(
        absl::StrCat("sandbox fork is not supported on the ", std::string(name()), " platform yet"));
  }
  // The copy of the seed's `seed_as` that PrepareSeedFork made for spare
  // `pgid`, now this sentry's: its parked threads, ready to Attach, initial
  // thread first.
  virtual absl::StatusOr<ForkedAddressSpace> TakeSeedCopy(AddressSpace& seed_as, pid_t pgid) {
    (void)seed_as, (void)pgid;
    return absl::UnimplementedError("sandbox fork: no TakeSeedCopy");
  }
};

// The platform names `--platform` accepts, and a factory.
std::vector<std::string_view> PlatformNames();
absl::StatusOr<std::unique_ptr<Platform>> NewPlatform(std::string_view name);

}  // namespace seedvisor::platform

#endif  // SEEDVISOR_PLATFORM_PLATFORM_H_
