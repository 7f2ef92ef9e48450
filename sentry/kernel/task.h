// Task: one guest thread.
//
// A task's whole state lives here (registers, FP/SSE/AVX state, signal
// mask, fd table, mm, credentials), never only on its host thread's stack,
// so that a task parked at a syscall boundary can be resumed by a new host
// thread. Each running
// task has one host thread that drives its platform context:
//
//   for (;;) { DeliverSignals(); Stop s = ctx->Run(regs); Handle(s); }
//
// Other threads touch a task only through Kernel::mu()-guarded fields and
// Notify()/Interrupt().
#ifndef SEEDVISOR_SENTRY_KERNEL_TASK_H_
#define SEEDVISOR_SENTRY_KERNEL_TASK_H_

#include <sched.h>
#include <time.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "platform/platform.h"
#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"
#include "sentry/kernel/credentials.h"
#include "sentry/kernel/host_thread.h"
#include "sentry/kernel/ptrace.h"
#include "sentry/kernel/seccomp.h"
#include "sentry/syscalls/syscall.h"
#include "sentry/kernel/signal_types.h"
#include "sentry/kernel/thread_group.h"
#include "sentry/mm/mm.h"
#include "sentry/vfs/fd_table.h"

namespace seedvisor::sentry {

class Kernel;
class FsContext;
class PidfdFile;
class PidNamespace;
class PidNumbers;
struct ThreadExitEvent;
class TimeNamespace;
class UtsNames;

class Task : public std::enable_shared_from_this<Task> {
 public:
  Task(Kernel& kernel, int tid, std::shared_ptr<ThreadGroup> tg);
  ~Task();

  Kernel& kernel() const { return kernel_; }
  // Global ids: the sandbox's pid namespace's (Kernel::TaskByTid).
  int tid() const { return tid_; }
  int tgid() const { return tg_->tgid(); }
  // The task's pid namespace (null: the sandbox's own) and its ids there,
  // what gettid(2) and getpid(2) return.
  PidNamespace* pid_ns() const { return tg_->pid_ns.get(); }
  int vtid() const { return vtid_ != 0 ? vtid_ : tid_; }
  int vtgid() const { return tg_->vtgid(); }
  // Its tid's ids at every level (pid_namespace.h; Linux's task_pid()),
  // for what names this thread after the call that named it (a file's
  // F_OWNER_TID owner). Set when the task is registered, before it runs;
  // constant after, so read without Kernel::mu().
  const std::shared_ptr<const PidNumbers>& pid_numbers() const { return pid_numbers_; }
  // Where its children's pids go (nsproxy's pid_ns_for_children): its own
  // namespace, or the one unshare(CLONE_NEWPID) or setns(2) chose.
  // Guarded by Kernel::mu().
  std::shared_ptr<PidNamespace> pid_ns_for_children_;
  ThreadGroup& tg() const { return *tg_; }
  std::shared_ptr<ThreadGroup> shared_tg() const { return tg_; }

  MM& mm() const { return *mm_; }
  std::shared_ptr<MM> shared_mm() const { return mm_; }
  // The task's own fd table and fs context: only the task replaces them
  // (unshare, exit), so it reads them without a lock.
  FdTable& fds() const { return *fds_; }
  FsContext& fs() const { return *fs_; }
  // Another task's (null once it exited): copied under fs_mu_, under which
  // the task replaces or drops them. Never take Kernel::mu() inside fs_mu_.
  std::shared_ptr<FdTable> shared_fds() const;
  std::shared_ptr<FsContext> shared_fs() const;
  // The task itself, or its creator before it runs: the old one is
  // released after fs_mu_ (its files' release may take other locks). They
  // count the task as a user of the new one and no longer of the old one.
  void set_fds(std::shared_ptr<FdTable> fds);
  void set_fs(std::shared_ptr<FsContext> fs);
  // Whether another task uses the task's own fd table or fs context
  // (Linux's files->count and fs->users above 1: clone(CLONE_FILES /
  // CLONE_FS) made it shared; exit, unshare and exec undo that). What
  // unshare(2), setns(2) and execve(2) ask; readers' copies
  // (shared_fds(), shared_fs()) do not count. The task itself only: no
  // one else can make a context shared that only its task uses, so the
  // answer "not shared" holds until the task clones.
  bool fds_shared() const;
  bool fs_shared() const;
  // The task's UTS namespace (its nsproxy's uts_ns): the sandbox's initial
  // one unless it or an ancestor made or entered another. Any thread may
  // read it; only the task itself changes it (unshare, setns).
  UtsNames& uts() const;
  std::shared_ptr<UtsNames> shared_uts() const;
  void set_uts(std::shared_ptr<UtsNames> ns) { uts_.store(std::move(ns)); }
  // The task's time namespace and the one its next children enter
  // (nsproxy's time_ns and time_ns_for_children; time_namespace.h), null
  // for the sandbox's initial one. Only the task itself replaces them
  // (unshare, setns; its clone sets its child's); any thread reads them.
  std::shared_ptr<TimeNamespace> time_ns() const { return time_ns_.load(); }
  std::shared_ptr<TimeNamespace> time_ns_for_children() const {
    return time_ns_for_children_.load();
  }
  void set_time_ns(std::shared_ptr<TimeNamespace> ns) { time_ns_.store(std::move(ns)); }
  void set_time_ns_for_children(std::shared_ptr<TimeNamespace> ns) {
    time_ns_for_children_.store(std::move(ns));
  }
  const Credentials& creds() const { return creds_; }
  Credentials& mutable_creds() { return creds_; }
  platform::Registers& regs() { return regs_; }

  // ---- FP/SSE/AVX state (platform/fp_state.h) ----
  // The FP state has two homes. While the task runs its context, the
  // context holds it: reading it costs a copy (systrap) or a ptrace call
  // (ptrace), so the syscall path never does. SaveFpState() moves it into
  // the task: from then on fp_state() is the authoritative copy, the
  // context's is stale, and Run() loads fp_state() into whatever context
  // runs the task next (once, before entering the guest), be it the same
  // one, a new one on a new host thread, or one in a new stub process.
  // Parking a task for a seed therefore leaves pure data:
  //
  //   t.SaveFpState();   // on the task's thread, at a syscall boundary
  //   ...                // drop the context, fork the sentry, re-attach
  //   // the next Run() installs t.fp_state() in the new context
  //
  // The kernel's own uses: clone/fork save the creator's state and give the
  // child a copy (fpu_clone()); signal delivery saves it into the frame and
  // gives the handler the init state (fpu__clear_user_states());
  // rt_sigreturn takes it from the frame; execve resets it
  // (fpu_flush_thread()). Call on the task's own thread, or while no thread
  // runs the task. A dead context leaves the last saved state in place.
  Status SaveFpState();
  // The saved state; call SaveFpState() first. Edits reach the guest when
  // the task next runs.
  platform::FpState& fp_state() { return fp_state_; }
  // True while fp_state() is authoritative (saved and not yet reloaded).
  bool fp_state_saved() const { return fp_saved_; }

  // Guest memory, through this task's mm.
  Status CopyIn(UserAddr addr, void* dst, size_t len) const { return mm_->CopyIn(addr, dst, len); }
  Status CopyOut(UserAddr addr, const void* src, size_t len) const {
    return mm_->CopyOut(addr, src, len);
  }
  template <typename T>
  Status CopyInObj(UserAddr addr, T* obj) const { return CopyIn(addr, obj, sizeof(T)); }
  template <typename T>
  Status CopyOutObj(UserAddr addr, const T& obj) const { return CopyOut(addr, &obj, sizeof(T)); }
  // One atomic read-modify-write of a 4-aligned guest word through this
  // task's context: the old value (sentry::AtomicUpdateWord, futex.h).
  Result<uint32_t> AtomicUpdateWord(UserAddr addr, const platform::Context::WordUpdate& u);
  // A path or other C string from the guest (ENAMETOOLONG past `max`).
  Result<std::string> CopyInString(UserAddr addr, size_t max = 4096) const {
    return mm_->CopyInString(addr, max);
  }
  // A NULL-terminated array of string pointers (argv, envp).
  Result<std::vector<std::string>> CopyInStringArray(UserAddr addr) const;

  // ---- Blocking ----
  // Waits until `host_fd` polls ready for `events`, until Notify(), or until
  // `deadline` (CLOCK_MONOTONIC, null = none). Returns ERESTARTSYS when a
  // signal is pending, ETIMEDOUT at the deadline, success otherwise (the
  // caller re-checks its condition: wakeups may be spurious).
  Status BlockOnFd(int host_fd, short events, const timespec* deadline = nullptr);
  // The same without a file: waits for Notify(), a signal, or the deadline.
  Status Block(const timespec* deadline = nullptr) { return BlockOnFd(-1, 0, deadline); }
  // Wakes a Block()ed task so it re-checks its condition; any thread.
  void Notify();
  // True if an unblocked signal is pending (or the group is exiting), or
  // the sandbox is being quiesced (Kernel::Quiesce): blocking syscalls end
  // with ERESTARTSYS and restart once the task runs again.
  bool SignalPending() const;
  // fatal_signal_pending(): SIGKILL (or a fatal signal's group exit) has
  // come; only that ends a killable wait (TASK_KILLABLE), such as an
  // overlay copy-up. Takes Kernel::mu().
  bool FatalSignalPending() const;
  // True if a blocking syscall was interrupted only to park the task (no
  // signal): a syscall that turns an interruption into EINTR must restart
  // instead (return kERESTARTNOINTR), or the guest would see a stray EINTR.
  bool ParkInterrupted() const;

  // ---- CPU time of guest code ----
  int64_t ThreadCpuNs() const { return ctx_ ? ctx_->CpuTimeNs() : 0; }
  // This process's: banked time of earlier images plus the current one.
  int64_t ProcessCpuNs() const;
  // Reaped children's (RUSAGE_CHILDREN).
  int64_t ChildrenCpuNs() const;
  // The same two for a task other than the caller (CPU clocks of other
  // threads and processes, CPU-time itimers): under Kernel::mu(), which
  // exec and exit hold while they swap the context and mm.
  int64_t ThreadCpuNsLocked() const;
  int64_t ProcessCpuNsLocked() const;
  // The caller's own two clocks, for its syscalls: exact
  // (Context::OwnCpuClockNs), where the ones above lag up to a host
  // scheduler tick behind a thread on a CPU, and so could show a thread
  // more CPU time than wall time passed between two readings.
  int64_t OwnThreadCpuNs();
  int64_t OwnProcessCpuNs();

  // ---- CPU time of the sentry on the task's behalf (system time) ----
  // What the host thread that runs this task has used since it started
  // running it: the sentry's work for the task's syscalls and faults, which
  // times(2) and getrusage(2) show as system time (guest code's is user
  // time). 0 before the task runs. A sandbox fork's new host thread starts
  // from 0 (what the seed's thread used stays the seed's).
  int64_t SentryCpuNs() const;
  // This process's: that of its exited tasks (ThreadGroup::sys_ns) and of
  // its live ones. Under Kernel::mu().
  int64_t ProcessSentryCpuNsLocked() const;

  // ---- Identity shown in /proc ----
  std::string comm() const;
  void set_comm(std::string name);
  char StateChar() const;  // R, S, T, Z as /proc/PID/stat shows
  // personality(2)'s persona: inherited by clone and kept across execve.
  uint32_t personality() const { return personality_.load(std::memory_order_relaxed); }
  void set_personality(uint32_t p) { personality_.store(p, std::memory_order_relaxed); }
  // prctl(PR_SET_TIMERSLACK) and /proc/PID/timerslack_ns: the value, and
  // the one that setting 0 restores (the creator's value at clone:
  // copy_process()). Kept for the guest; the host times the sleeps.
  static constexpr uint64_t kDefaultTimerSlackNs = 50000;
  uint64_t timer_slack_ns() const { return timer_slack_ns_.load(std::memory_order_relaxed); }
  uint64_t default_timer_slack_ns() const { return default_timer_slack_ns_; }
  void set_timer_slack_ns(uint64_t ns) {
    timer_slack_ns_.store(ns == 0 ? default_timer_slack_ns_ : ns, std::memory_order_relaxed);
  }
  // This thread's read/write accounting (/proc/PID/task/TID/io); updated
  // by the task itself, read by anyone.
  IoCounters io() const;
  // Times the task entered guest code (/proc/PID/schedstat's timeslices).
  uint64_t guest_entries() const { return guest_entries_.load(std::memory_order_relaxed); }
  // The audit login uid and session (/proc/PID/loginuid, sessionid):
  // unset (-1) until a write to loginuid sets them; inherited by clone.
  static constexpr uint32_t kAuditUnset = 0xffffffffu;
  uint32_t loginuid() const { return loginuid_.load(std::memory_order_relaxed); }
  uint32_t audit_sessionid() const { return sessionid_.load(std::memory_order_relaxed); }
  void set_login(uint32_t loginuid, uint32_t sessionid) {
    loginuid_.store(loginuid, std::memory_order_relaxed);
    sessionid_.store(sessionid, std::memory_order_relaxed);
  }
  void AccountRead(int64_t bytes);
  void AccountWrite(int64_t bytes);
  int64_t start_time_ns() const { return start_time_ns_; }

  // ---- Signals (task_signals.cc); callers hold Kernel::mu() ----
  SigSet signal_mask() const { return signal_mask_; }
  void set_signal_mask(SigSet m) { signal_mask_ = m & ~kUnblockable; }
  PendingSignals& pending() { return pending_; }
  stack_t& altstack() { return altstack_; }
  // Wakes the task from guest mode or a Block() to look at its signals.
  void Interrupt();

  // ---- Lifecycle ----
  // Runs the task on `host` (attaching `thread` of its mm's address space
  // first). The thread owns a reference to the task.
  void Start(HostThread host, platform::ThreadHandle thread);
  // Runs a task that has no address space yet on `host` (made before the
  // task, so that the host's refusal fails the start, not the sentry): its
  // first act is to exec the first of `candidates` that exists (pid 1's
  // PATH search). `on_exec` gets the exec's result, before the guest runs.
  void StartWithExec(HostThread host, std::vector<std::string> candidates,
                     std::vector<std::string> argv, std::vector<std::string> envp,
                     std::function<void(Status)> on_exec);
  bool exited() const { return exited_.load(); }
  // Sandbox fork (sentry/sfork), in the forked sentry only, on its only
  // thread: forgets the seed's platform context without touching it (it is
  // the seed's), keeps the task's FP state to restore into the new context,
  // makes the task's own wakeup fd, and remembers `thread` (the task's
  // platform thread in the child's copy of its address space) for
  // StartForked().
  absl::Status AdoptInForkChild(platform::ThreadHandle thread);
  absl::Status StartForked();

  // clone(2) (task_clone.cc): returns the child's tid.
  struct CloneArgs {
    uint64_t flags = 0;
    UserAddr stack;
    UserAddr parent_tid;
    UserAddr child_tid;
    uint64_t tls = 0;
    // CLONE_PIDFD: an unbound pidfd the caller installed as `pidfd_fd`
    // (and removes again if the clone fails); Clone binds it to the child
    // and stores the fd at `pidfd_out` (clone(2): parent_tid).
    std::shared_ptr<PidfdFile> pidfd;
    int pidfd_fd = -1;
    UserAddr pidfd_out;
    // clone3(2)'s set_tid (checked by the caller): the child's id, EEXIST
    // if taken; 0 picks the next free one.
    int set_tid = 0;
    // clone3(2)'s CLONE_NEWTIME, which clone(2) cannot pass (its bit is
    // in the exit signal's byte of `flags`).
    bool new_time_ns = false;
  };
  Result<int> Clone(const CloneArgs& args);
  // execve(2) (task_exec.cc). On success the registers are the new image's.
  Status Execve(const std::string& path, std::vector<std::string> argv,
                std::vector<std::string> envp, bool at_empty_path_fd = false);
  // exit(2): ends this thread; exit_group(2): the whole thread group.
  void ExitThread(int code);
  void ExitGroup(int code);
  // rt_sigreturn(2) (task_signals.cc).
  Status SigReturn();
  // Handlers that set the registers themselves (execve, rt_sigreturn) call
  // this so the dispatcher does not overwrite rax.
  void MarkRegistersReplaced() { regs_replaced_ = true; }
  // A fault or other synchronous signal that cannot be blocked or ignored.
  void ForceSignal(const siginfo_t& info);
  // Ends this thread, or the whole group, as a signal would with the wait
  // status `status` (e.g. SIGSYS, or SIGSYS | 0x80 for a core dump).
  void KillThread(int status);
  void KillGroup(int status);
  void KillGroupLocked(int status);  // with Kernel::mu() held
  // After the platform reported this task's context dead (or gave it none):
  // the signal the host process behind its address space died of
  // (platform::AddressSpace::HostDeathSignal), or 0 if the group is
  // already ending. Lock not held; after a dead context (`context_died`)
  // may wait briefly for the host's reap (HostDeathSignal).
  int HostDeathSignalUnlessExiting(bool context_died);

  // ---- seccomp (task_seccomp.cc, seccomp.h) ----
  // The mode and filters; set by the task itself, or by a sibling's
  // SECCOMP_FILTER_FLAG_TSYNC under Kernel::mu().
  SeccompState seccomp() const;
  void set_seccomp(SeccompState s);


  // ---- ptrace (ptrace.h, ptrace.cc) ----
  // Guarded by Kernel::mu().
  PtraceState& ptrace() { return ptrace_; }
  const PtraceState& ptrace() const { return ptrace_; }
  // In a ptrace-stop (for /proc's 't'; racy by nature).
  bool ptrace_stopped() const { return ptrace_stopped_.load(); }
  // On the task's own thread, with Kernel::mu() held: enters a ptrace-stop
  // reported as `exit_code` (sig | event << 8) and sleeps until the tracer
  // resumes it, detaches, or the task is killed.
  void PtraceStopLocked(PtraceState::Stop kind, int exit_code, const siginfo_t* info)
      ABSL_NO_THREAD_SAFETY_ANALYSIS;
  // A PTRACE_EVENT_* stop if the tracer asked for it (exec's legacy SIGTRAP
  // otherwise); own thread, lock not held. A fork's, clone's or exec's
  // `msg` is a global id (the tracer gets its own namespace's).
  void PtraceEvent(int event, uint64_t msg);
  // Syscall-entry/-exit stop under PTRACE_SYSCALL/SYSEMU; false when the
  // task was killed meanwhile. Own thread, lock not held.
  bool PtraceSyscallStop(bool entry);
  // Whether a tracer is attached: the syscall path's one check.
  void set_traced(bool v) { traced_.store(v, std::memory_order_release); }

  // Fields set up by clone/exec (task_clone.cc, task_exec.cc).
  std::shared_ptr<MM> mm_;
  // Written under fs_mu_ (set_fds, set_fs); read by the task itself without
  // it, by others under it (shared_fds, shared_fs).
  std::shared_ptr<FdTable> fds_;
  std::shared_ptr<FsContext> fs_;
  mutable absl::Mutex fs_mu_;
  std::atomic<std::shared_ptr<UtsNames>> uts_;  // null: kernel_.uts()
  std::atomic<std::shared_ptr<TimeNamespace>> time_ns_, time_ns_for_children_;
  Credentials creds_;
  platform::Registers regs_{};
  // See SaveFpState(). A new task starts saved, in the init state, so that
  // its first Run() installs a known state in a context of any origin.
  platform::FpState fp_state_;
  bool fp_saved_ = true;
  std::unique_ptr<platform::Context> ctx_;  // owned by the task's host thread
  UserAddr clear_child_tid_;
  UserAddr robust_list_;
  // FutexTable::ExitPi has run: no PI futex may name this task as its
  // owner any more (guarded by the futex table's lock).
  bool futex_exited_ = false;
  // rseq(2) (task_rseq.cc): the area this thread registered, none if addr
  // is null. Its context's host thread holds the same registration; a new
  // context (a fork child's, a sandbox fork's) gets it before the task
  // runs. Inherited by fork, not by CLONE_VM children; exec drops it.
  struct RseqState {
    UserAddr addr;
    uint32_t len = 0;
    uint32_t sig = 0;
  };
  RseqState rseq_;
  // The syscall, on the task's own thread.
  SyscallReturn Rseq(UserAddr area, uint32_t len, int flags, uint32_t sig);
  // Unregisters (exec, exit) on the host thread and forgets the area.
  void DropRseq();
  SigSet saved_mask_ = 0;        // for rt_sigsuspend / pselect / ppoll
  bool restore_saved_mask_ = false;
  bool vfork_done_ = false;      // guarded by Kernel::mu()
  std::shared_ptr<Task> vfork_parent_;
  // sched_setaffinity(2)'s mask (guarded by Kernel::mu()); unset means every
  // CPU the sandbox has. Kept, not applied: the host schedules the sandbox.
  std::optional<cpu_set_t> affinity_;
  // sched_setscheduler(2)/sched_setattr(2)'s policy and parameters
  // (guarded by Kernel::mu()): kept per thread and reported back, as the
  // affinity is; the host schedules the sandbox.
  struct SchedParams {
    int policy = 0;         // SCHED_OTHER ...
    int priority = 0;       // sched_priority: 1..99 for FIFO/RR, else 0
    bool reset_on_fork = false;
    uint64_t runtime = 0, deadline = 0, period = 0;  // SCHED_DEADLINE
  };
  SchedParams sched_;
  // ioprio_set(2)'s I/O priority (guarded by Kernel::mu()), 0 (the NONE
  // class) until set; kept and reported back, as the scheduling is.
  int ioprio_ = 0;
  // Parked at a syscall boundary by Kernel::Quiesce (guarded by Kernel::mu()).
  bool parked_ = false;
  // What restart_syscall(2) runs after a syscall returned
  // kERESTART_RESTARTBLOCK (set by that syscall; the raw result or -errno).
  // Task data like the registers, so a parked sleep restarts in a fork too.
  std::function<int64_t(Task&)> restart_block_;
  // Work for this task's host thread to run while parked
  // (Kernel::RunOnParkedTasks; guarded by Kernel::mu()).
  std::function<void()> park_work_;
  // Sandbox fork: the platform thread StartForked() attaches.
  platform::ThreadHandle fork_thread_;

 private:
  friend class Kernel;  // counted_uid_, pid_numbers_
  friend class PidfdFile;  // thread_exit_event_
  void Run();
  // Installs fp_state_ in ctx_ if it is the authoritative copy.
  void LoadFpState();
  // Handles group exit, job-control stop and signal delivery before the task
  // returns to the guest; false when the task must exit.
  bool PrepareToRun();
  void HandleSyscall();
  // Runs strict mode or the filters on syscall `a` before dispatch. False
  // when it must not run: its result is already in the registers, or a
  // signal or the thread's end is on its way.
  // A tracer's PTRACE_EVENT_SECCOMP stop (SECCOMP_RET_TRACE) may change the
  // call in `a`; the filters then run again (`recheck`), where a second
  // RET_TRACE allows it (__seccomp_filter()).
  bool SeccompAllows(SyscallArgs& a, bool recheck = false);
  // Gives a new context the task's rseq registration (task_rseq.cc).
  void SyncRseq();
  // Before a signal frame is built: a thread inside its rseq critical
  // section goes to its abort handler (rseq_signal_deliver()). False if the
  // guest's rseq_cs is invalid: it gets SIGSEGV.
  bool RseqAbortForSignal();
  // Builds a signal frame and points the registers at the handler; false
  // (registers untouched) when the frame cannot be written.
  bool SetupSignalFrame(int sig, const siginfo_t& info, const KernelSigaction& act);
  // A handler's frame could not be written: SIGSEGV instead
  // (signal_setup_done() -> force_sigsegv()).
  void ForceSigsegv(int sig);
  // Turns a pending ERESTART* result into a restart or EINTR.
  void FinishRestart(bool handler_runs, const KernelSigaction* act);
  void ExitTask();
  // The syscall number and arguments as the registers hold them.
  SyscallArgs SyscallArgsFromRegs() const;
  // Sleeps until Notify(), whatever is pending (a ptrace-stop).
  void WaitForWake();
  // A group-stop this task must still take part in (not one a tracer has
  // already seen it report and resumed it from). Under Kernel::mu().
  bool GroupStopPending() const;
  PtraceState ptrace_;
  std::atomic<bool> ptrace_stopped_{false};
  std::atomic<bool> traced_{false};
  bool regs_replaced_ = false;
  int restart_errno_ = 0;       // an ERESTART* code from the last syscall
  bool exit_requested_ = false;
  int exit_status_ = 0;  // the wait status this thread ends with (ExitThread, KillThread)

  Kernel& kernel_;
  const int tid_;
  int vtid_ = 0;  // vtid(), set at clone
  std::shared_ptr<const PidNumbers> pid_numbers_;  // Kernel::RegisterTask
  // The real uid this task counts against (Kernel::tasks_per_uid_); kept
  // under Kernel::mu(), moved by Kernel::RecountTaskUid.
  uid_t counted_uid_ = 0;
  std::shared_ptr<ThreadGroup> tg_;
  int wake_fd_ = -1;  // eventfd: Notify() writes, Block() polls
  std::atomic<bool> in_guest_{false};
  std::atomic<bool> exited_{false};
  // Its thread pidfds' exit event (PidfdFile::BindThread), signalled when
  // exited_ is set; guarded by Kernel::mu().
  std::shared_ptr<ThreadExitEvent> thread_exit_event_;
  std::atomic<bool> blocked_{false};
  std::string comm_;
  mutable std::mutex comm_mu_;
  std::atomic<uint32_t> personality_{0};
  std::atomic<uint64_t> timer_slack_ns_{kDefaultTimerSlackNs};
  uint64_t default_timer_slack_ns_ = kDefaultTimerSlackNs;  // set at clone only
  std::atomic<uint64_t> guest_entries_{0};
  // SentryCpuNs(): the running host thread's CPU clock and its reading
  // when it began to run the task, published by host_clock_set_.
  clockid_t host_clock_ = 0;
  int64_t host_clock_base_ = 0;
  std::atomic<bool> host_clock_set_{false};
  void NoteHostThread();
  std::atomic<uint32_t> loginuid_{kAuditUnset}, sessionid_{kAuditUnset};
  std::atomic<uint64_t> io_rchar_{0}, io_wchar_{0}, io_syscr_{0}, io_syscw_{0};
  int64_t start_time_ns_ = 0;
  SigSet signal_mask_ = 0;
  PendingSignals pending_;
  stack_t altstack_{nullptr, SS_DISABLE, 0};
  mutable absl::Mutex seccomp_mu_;
  SeccompState seccomp_ ABSL_GUARDED_BY(seccomp_mu_);
  // seccomp_.mode != DISABLED: the syscall path's one check.
  std::atomic<bool> seccomp_on_{false};
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_TASK_H_
