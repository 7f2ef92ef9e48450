// Host syscalls made in a stub process by ptrace injection: a stopped, traced
// stub thread is pointed at a gadget (stub_layout.h), runs one syscall and
// traps back. Both stub platforms use this for what a stub cannot do on its
// own (forking stubs, new threads, mapping sentry files); ptrace also for
// every memory call.
//
//   stub::Injector inj(tid, layout.entry);       // seizes the parked thread
//   long fd = inj.Call(SYS_openat, AT_FDCWD, path_in_stub, O_RDONLY);
//   // ~Injector detaches: the thread parks again where it was.
#ifndef SEEDVISOR_PLATFORM_STUB_INJECTOR_H_
#define SEEDVISOR_PLATFORM_STUB_INJECTOR_H_

#include <sched.h>
#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "platform/platform.h"
#include "platform/stub/stub_layout.h"
#include "sentry/base/errno.h"

namespace seedvisor::platform::stub {

class SlotRegistry;

// Waits for the next wait status of the traced `tid` (retrying EINTR); -1 if
// there is none to wait for.
int WaitFor(pid_t tid);

// Seizes a parked stub thread from the calling thread and waits until it stops.
Status SeizeAndStop(pid_t tid);

// Makes host syscall `nr` in the stopped, traced stub thread `tid` by running
// the gadget at `gadget_addr`; restores the thread's registers afterwards.
// Returns the raw result (-errno on failure); sets *dead if the thread died.
//
// Only our call runs. A thread with a host rseq registration (Context::Rseq)
// can be moved by the host from the gadget to the guest's abort handler
// when it resumes; guest code then runs traced, where a seccomp stop that
// we continue (systrap's SECCOMP_RET_TRACE calls) or no filter at all
// (ptrace stubs) would make its syscalls on the host. So every seccomp stop
// must be our call (ip, number, arguments), once; and `guarded` (for an
// unfiltered thread that holds a registration) stops at every syscall's
// entry for the same check. Any other call kills the stub process.
//
// `rseq_cs` (guarded only): the address of the thread's registered
// rseq_cs word. A descriptor there that the host finds invalid makes it
// force SIGSEGV at every return to user mode, which would stop the call
// forever; the word is cleared then (the host stops looking) and
// *rseq_segv set, for the platform to report the guest's SIGSEGV.
// Bounded: a thread that stops for other reasons without end is killed.
//
// `no_syscall`: the gadget makes no syscall (kStubAtomicGadget; `nr` is
// only loaded into rax): its int3 ends the call guarded or not, and a
// guarded thread's syscall is foreign.
long InjectSyscall(pid_t tid, uint64_t gadget_addr, long nr, const long (&args)[6], bool* dead,
                   bool guarded = false, uint64_t rseq_cs = 0, bool* rseq_segv = nullptr,
                   bool no_syscall = false);

// One host syscall at a time in a stub; the raw result, -errno on failure.
class StubSyscalls {
 public:
  virtual ~StubSyscalls() = default;
  long Call(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
            long a5 = 0) {
    const long args[6] = {a0, a1, a2, a3, a4, a5};
    return Invoke(nr, args);
  }

 protected:
  virtual long Invoke(long nr, const long (&args)[6]) = 0;
};

// A stub thread seized for a few injected host syscalls; detached (and so
// back where it was) when destroyed. Not for a thread another tracer holds.
class Injector : public StubSyscalls {
 public:
  Injector(pid_t tid, uint64_t entry);
  ~Injector() override;
  Injector(const Injector&) = delete;
  Injector& operator=(const Injector&) = delete;

  bool ok() const { return ok_; }
  bool dead() const { return dead_; }
  // Runs at `gadget` (an offset from the entry point), e.g. kStubForkGadget.
  long CallAt(uint64_t gadget, long nr, const long (&args)[6]);

 protected:
  long Invoke(long nr, const long (&args)[6]) override {
    return CallAt(kStubSyscallGadget, nr, args);
  }

 private:
  const pid_t tid_;
  const uint64_t entry_;
  bool ok_ = false;
  bool dead_ = false;
};

// Forks a new stub process that dies with `parent` (PR_SET_PDEATHSIG
// SIGKILL), so that none outlives a sandbox whose sentry and zygote were
// SIGKILLed; `parent` is the zygote (or 0: untied, a plain fork). Every
// stub process is forked this way, on every platform:
//
//   long pid = stub::ForkTied(as.dies_with(), entry, [&](long flags) {
//     absl::MutexLock k(&as.kept_mutex());  // held for the clone only
//     const long args[6] = {CLONE_PARENT | SIGCHLD | flags};
//     return inj.CallAt(kStubForkGadget, SYS_clone, args);
//   });
//
// `clone(flags)` makes the clone at a fork gadget, the child's parent
// being `parent`, with `flags` added to its own, and returns its raw
// result. Tied, `flags` is CLONE_PTRACE: the child starts traced by the
// calling thread, stopped before its first instruction, and is SIGKILLed
// if this thread dies first (PTRACE_O_EXITKILL is inherited). After
// `clone` returns (and the locks it took are dropped), the child gets its
// parent-death signal (prctl injected) and is checked to still be
// `parent`'s child (/proc/<child>/stat): if the parent died before the
// prctl, the child was re-parented and no signal would come (prctl(2)),
// so it is killed and the fork fails. Then it is detached, parked. The
// child's pid, or -errno with no child left (a clone that returns 0:
// -EAGAIN).
long ForkTied(pid_t parent, uint64_t entry, absl::FunctionRef<long(long flags)> clone);

// Forks a new parked stub from the zygote `zygote` (traced only while it
// forks, so that nobody has to serve its SIGCHLDs in between), which dies
// with the zygote unless `dies_with_zygote` is false. The caller
// serializes calls for one zygote.
Result<pid_t> ForkStub(pid_t zygote, uint64_t entry, bool dies_with_zygote = true);

// clone(2)'s flags for a new thread of a stub process: the stub's threads
// share everything.
inline constexpr long kStubThreadCloneFlags =
    CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;

// A new thread in the stub process of the parked stub thread `tid`, on a
// platform that gives each stub thread a slot of its shared region
// (systrap, kvm): clone(kStubThreadCloneFlags) injected at the fork
// gadget. The thread shares `tid`'s stack pointer but never touches the
// stack: it parks in a futex wait until a sentry thread attaches it. Its
// slot is taken first and reserved for it (SlotRegistry::Reserve; the
// context made for it Takes it): with every slot in use clone fails with
// EAGAIN, as Linux's does at threads-max (copy_process()). The host's
// refusal (a pids cgroup, threads-max) is the guest's: ENOMEM, else
// EAGAIN; the slot goes back.
//
//   Result<ThreadHandle> SystrapContext::NewThread() {
//     return stub::NewStubThread(tid_, as_->layout().entry, as_->slots());
//   }
Result<ThreadHandle> NewStubThread(pid_t tid, uint64_t entry, SlotRegistry& slots);

// ---- Sandbox fork (sentry/sfork), in the seed, ahead of a fork ----
// Each call seizes a parked, untraced stub thread for a moment and detaches
// again.

// Makes the parked stub process `pid` (a fresh copy of a seed's stub) ready
// for a forked sandbox: moves it into process group `pgid` (the fork's
// anchor group; setpgid injected), makes it outlive the seed's zygote (its
// parent, which a guest fork's copy dies with: PR_SET_PDEATHSIG 0) and
// gives it `threads` parked threads in all. Their tids, `pid` first. The
// caller kills `pid` on failure.
Result<std::vector<pid_t>> PrepareForkedStub(pid_t pid, uint64_t entry, pid_t pgid, int threads);
// The forked sandbox's own zygote: a stub forked from `zygote` (the seed's,
// which it leaves untouched and does not die with), moved into `pgid` and
// sent into the zygote loop, so that it reaps the stubs forked from it.
// Nothing is left behind on failure.
Result<pid_t> ForkZygoteInGroup(pid_t zygote, uint64_t entry, pid_t pgid);

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_INJECTOR_H_
