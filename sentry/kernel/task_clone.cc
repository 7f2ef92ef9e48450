// clone(2): new threads and new processes.
#include <linux/ptrace.h>
#include <linux/sched.h>  // CLONE_CLEAR_SIGHAND
#include <linux/capability.h>
#include <sched.h>
#include <sys/syscall.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/keys/task_keys.h"
#include "sentry/kernel/ns_ino.h"
#include "sentry/kernel/pid_namespace.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/kernel/user_namespace.h"
#include "sentry/loader/vdso_clock.h"
#include "sentry/syscalls/sys_mempolicy.h"
#include "sentry/vfs/fs_context.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

UtsNames& Task::uts() const {
  // Called by the task itself (uname, sethostname, its clone, /proc read
  // by it), which is also the only one that replaces uts_: the namespace
  // stays alive in uts_ while the caller uses the reference. Others use
  // shared_uts().
  UtsNames* ns = uts_.load().get();
  return ns != nullptr ? *ns : kernel_.uts();
}

std::shared_ptr<UtsNames> Task::shared_uts() const {
  std::shared_ptr<UtsNames> ns = uts_.load();
  return ns != nullptr ? ns : kernel_.shared_uts();
}

Result<int> Task::Clone(const CloneArgs& a) {
  const uint64_t flags = a.flags;
  // copy_process()'s checks in its order: a combination that makes no
  // sense is EINVAL before a new namespace's capability is looked at.
  if ((flags & (CLONE_NEWNS | CLONE_FS)) == (CLONE_NEWNS | CLONE_FS)) return Errno(EINVAL);
  if ((flags & (CLONE_NEWUSER | CLONE_FS)) == (CLONE_NEWUSER | CLONE_FS)) return Errno(EINVAL);
  if ((flags & CLONE_THREAD) && !(flags & CLONE_SIGHAND)) return Errno(EINVAL);
  if ((flags & CLONE_SIGHAND) && !(flags & CLONE_VM)) return Errno(EINVAL);
  // An init (SIGNAL_UNKILLABLE: the sandbox's, or a pid namespace's) makes
  // no siblings.
  if ((flags & CLONE_PARENT) && (tg_->unkillable || vtgid() == 1)) return Errno(EINVAL);
  // A thread stays in its process's pid namespace.
  if ((flags & CLONE_THREAD) &&
      ((flags & (CLONE_NEWUSER | CLONE_NEWPID)) || pid_ns_for_children_ != tg_->pid_ns)) {
    return Errno(EINVAL);
  }
  // clone(2): a thread's pidfd is a thread pidfd (Linux 6.9), a detached
  // one has none; the legacy clone passes its address in parent_tid, so
  // CLONE_PARENT_SETTID cannot join it there (clone3 has a field of its own).
  if ((flags & CLONE_PIDFD) && (flags & CLONE_DETACHED)) return Errno(EINVAL);
  if ((flags & CLONE_PIDFD) && (flags & CLONE_PARENT_SETTID) && a.pidfd_out == a.parent_tid) {
    return Errno(EINVAL);
  }
  if ((flags & CLONE_PIDFD) && !a.pidfd) return Errno(EINVAL);
  // copy_creds(): a new user namespace needs no capability, and the
  // child holds every one in it (sentry/kernel/user_namespace.h);
  // copy_namespaces(): another new namespace needs CAP_SYS_ADMIN in the
  // child's user namespace, so a new user namespace is what lets an
  // unprivileged caller make them. Of them mount, UTS and PID are
  // supported inside the sandbox (sentry/syscalls/sys_ns.cc says why not
  // the others): those are refused the way a container without
  // CAP_SYS_ADMIN sees it.
  Credentials child_creds = creds_;
  if (flags & CLONE_NEWUSER) {
    std::shared_ptr<UserNamespace> user_ns;
    if (int err = UserNamespace::Create(creds_, &user_ns); err != 0) return Errno(err);
    UserNamespace::Enter(child_creds, std::move(user_ns));
  }
  constexpr uint64_t kNamespaces = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET |
                                   CLONE_NEWCGROUP | CLONE_NEWUTS;
  if (((flags & kNamespaces) || a.new_time_ns) && !child_creds.HasCapInOwnNs(CAP_SYS_ADMIN)) {
    return Errno(EPERM);
  }
  if ((flags & (CLONE_NEWIPC | CLONE_SYSVSEM)) == (CLONE_NEWIPC | CLONE_SYSVSEM)) {
    return Errno(EINVAL);
  }
  if (flags & (kNamespaces & ~static_cast<uint64_t>(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID))) {
    return Errno(EPERM);
  }
  // The child's pid namespace: where our children go, or a new one below
  // it (create_pid_namespace(): ENOSPC past MAX_PID_NS_LEVEL).
  std::shared_ptr<PidNamespace> pid_ns = pid_ns_for_children_;
  if (flags & CLONE_NEWPID) {
    if ((pid_ns ? pid_ns->level() : 0) >= PidNamespace::kMaxLevel) return Errno(ENOSPC);
    pid_ns = std::make_shared<PidNamespace>(pid_ns);
  }
  // Its time namespaces (copy_time_ns(), timens_on_fork()): a new one,
  // a copy of where our children go, for its children with
  // CLONE_NEWTIME; a new process enters that, a CLONE_VM child (a thread,
  // a vfork child) stays in ours.
  std::shared_ptr<TimeNamespace> time_for_children = time_ns_for_children();
  if (a.new_time_ns) time_for_children = TimeNamespace::CopyOf(time_for_children.get());
  std::shared_ptr<TimeNamespace> child_time = (flags & CLONE_VM) ? time_ns() : time_for_children;

  {
    // Refused early, before any host work (a fork bomb at its limit costs
    // no stub process per attempt); checked again when the task is added.
    absl::MutexLock l(&kernel_.mu());
    SV_TRY(kernel_.CheckTaskLimits(*this));
  }
  // The host resources come first: the host thread that will run the
  // child, then its platform thread or address space. The host's refusal
  // of any of them (a pids cgroup, threads-max, memory) is the guest's
  // EAGAIN or ENOMEM, and nothing guest-visible has changed yet.
  SV_ASSIGN_OR_RETURN(HostThread host, HostThread::Spawn());
  // The child starts with a copy of our FP state (fpu_clone()).
  SV_TRY(SaveFpState());
  std::shared_ptr<MM> mm;
  platform::ThreadHandle handle;
  if (flags & CLONE_VM) {
    mm = mm_;
    SV_ASSIGN_OR_RETURN(handle, ctx_->NewThread());
  } else {
    SV_ASSIGN_OR_RETURN(mm, mm_->Fork(*ctx_));
    handle = mm->address_space().initial_thread();
    // vdso_join_timens(): its vDSO clock as its time namespace reads it.
    SV_TRY(SetVdsoClockSyscall(*mm, child_time != nullptr));
  }
  // A failure from here on lets go of the new platform thread: the host
  // thread attaches it and drops it, which ends it (a new address space
  // dies with `mm` instead). Not on this thread: its own context is the
  // one registered for this host thread.
  auto abandon = [&](Errno e) -> Errno {
    if (flags & CLONE_VM) {
      std::move(host).Run([&platform = kernel_.platform(), as = mm->shared_address_space(),
                           handle] { platform.Attach(as, handle).IgnoreError(); });
    }
    return e;
  };
  std::shared_ptr<FdTable> fds = (flags & CLONE_FILES) ? fds_ : fds_->Fork();
  std::shared_ptr<FsContext> fs = (flags & CLONE_FS) ? fs_ : fs_->Fork();
  if (flags & CLONE_NEWNS) {
    // copy_mnt_ns(): the child's own copy of our mounts (CLONE_FS is
    // EINVAL with it, so `fs` is the child's alone).
    Vfs& vfs = kernel_.vfs();
    vfs.UnshareMountNamespace(*fs, NextNsIno());
  }

  std::shared_ptr<Task> child;
  int event = 0;  // the PTRACE_EVENT_* our tracer asked for, if any
  {
    absl::MutexLock l(&kernel_.mu());
    if (tg_->group_exiting) return abandon(Errno(EINTR));
    if (Status s = kernel_.CheckTaskLimits(*this); !s.ok()) return abandon(s.error());
    // clone3's set_tid names the id in the child's own namespace.
    int tid = a.set_tid != 0 && pid_ns == nullptr ? kernel_.AllocateTidAt(a.set_tid)
                                                  : kernel_.AllocateTid();
    if (tid == -EEXIST) return abandon(Errno(EEXIST));
    if (tid < 0) return abandon(Errno(EAGAIN));
    if (Status s = kernel_.AttachIdsLocked(pid_ns, tid, pid_ns ? a.set_tid : 0); !s.ok()) {
      return abandon(s.error());
    }
    // A failure after this gives the ids back (a stale local id would
    // name whoever gets `tid` next) and a namespace's init that never ran.
    auto abandon_ids = [&](Errno e) {
      if (pid_ns != nullptr && pid_ns->Local(tid) == 1) pid_ns->init.reset();
      kernel_.ForgetIdLocked(tid);
      return abandon(e);
    };
    std::shared_ptr<ThreadGroup> tg;
    if (flags & CLONE_THREAD) {
      tg = tg_;
    } else {
      tg = std::make_shared<ThreadGroup>(tid);
      tg->pid_ns = pid_ns;
      if (pid_ns != nullptr) tg->set_vtgid(pid_ns->Local(tid));
      if (pid_ns != nullptr && pid_ns->Local(tid) == 1) {
        // The namespace's init (is_child_reaper(): its first process, of
        // clone(CLONE_NEWPID) or the first fork after unshare): unkillable
        // from inside it, as the sandbox's init (SIGNAL_UNKILLABLE), and
        // its orphans' reaper.
        pid_ns->init = tg;
        tg->unkillable = true;
      }
      if (flags & CLONE_PIDFD) {
        if (Status s = a.pidfd->Bind(tg); !s.ok()) return abandon_ids(s.error());
      }
      tg->parent = (flags & CLONE_PARENT) ? tg_->parent : tg_;
      if (!(flags & CLONE_PARENT)) tg->parent_tid = tid_;
      tg->pgid = tg_->pgid;
      tg->sid = tg_->sid;
      tg->container_id = tg_->container_id;
      tg->container_pids = tg_->container_pids;
      tg->rlimits = tg_->rlimits;
      tg->oom_score_adj = tg_->oom_score_adj;
      tg->oom_score_adj_min = tg_->oom_score_adj_min;
      // The mm's flags come along with the copy (dup_mm()): dumpable and
      // PR_SET_THP_DISABLE.
      tg->dumpable.store(tg_->dumpable.load());
      tg->thp_disable = tg_->thp_disable;
      // A finite limit was watched in the parent, so the thread runs already.
      kernel_.timers().WatchCpuLimit(tg).ok();
      tg->exit_signal = static_cast<int>(flags & CSIGNAL);
      tg->handlers = (flags & CLONE_SIGHAND) ? tg_->handlers
                                             : std::make_shared<SignalHandlers>(*tg_->handlers);
      if (flags & CLONE_CLEAR_SIGHAND) {
        // flush_signal_handlers(p, 0): handlers back to SIG_DFL, ignored
        // signals stay ignored, no flags or masks.
        for (KernelSigaction& act : tg->handlers->actions) {
          const bool ignored = act.handler == reinterpret_cast<uint64_t>(SIG_IGN);
          act = KernelSigaction{};
          if (ignored) act.handler = reinterpret_cast<uint64_t>(SIG_IGN);
        }
      }
      tg->start_time_ns = kernel_.boot_time_ns();
      if (auto parent = tg->parent.lock()) parent->children.push_back(tg);
    }
    child = std::make_shared<Task>(kernel_, tid, tg);
    if (pid_ns != nullptr) child->vtid_ = pid_ns->Local(tid);
    child->pid_ns_for_children_ = pid_ns;
    if ((flags & CLONE_PIDFD) && (flags & CLONE_THREAD)) {
      // Linux 6.9: a thread's pidfd is a PIDFD_THREAD one.
      if (Status s = a.pidfd->BindThread(child); !s.ok()) return abandon_ids(s.error());
    }
    tg->tasks.push_back(child.get());
    if (tg->leader == nullptr) tg->leader = child.get();
    child->mm_ = mm;
    child->set_fds(std::move(fds));
    child->set_fs(std::move(fs));
    // copy_utsname(): a copy of the parent's names in a namespace of its own.
    child->set_uts((flags & CLONE_NEWUTS) ? UtsNames::CopyOf(uts()) : uts_.load());
    if (child_time != nullptr) child_time->Enter();  // its offsets are fixed now
    child->set_time_ns(std::move(child_time));
    child->set_time_ns_for_children(std::move(time_for_children));
    child->creds_ = std::move(child_creds);
    KeysOnClone(*this, *child, flags);  // copy_creds()'s keyrings
    child->set_seccomp(seccomp());  // copy_seccomp()
    child->set_comm(comm());
    child->set_personality(personality());
    child->set_login(loginuid(), audit_sessionid());
    child->timer_slack_ns_ = timer_slack_ns();
    child->default_timer_slack_ns_ = timer_slack_ns();  // copy_process()
    child->signal_mask_ = signal_mask_;
    child->affinity_ = affinity_;
    child->sched_ = sched_;
    child->ioprio_ = ioprio_;  // copy_io(): a copy (CLONE_IO's sharing is not kept)
    if (sched_.reset_on_fork) {
      // sched_fork(): realtime and deadline children start as SCHED_OTHER,
      // and the flag is not inherited. (A negative nice is reset too,
      // where nice is per thread; here it is per process.)
      if (sched_.policy != SCHED_OTHER && sched_.policy != SCHED_BATCH &&
          sched_.policy != SCHED_IDLE) {
        child->sched_ = {};
      }
      child->sched_.reset_on_fork = false;
    }
    if (!(flags & CLONE_VM) || (flags & CLONE_VFORK)) child->altstack_ = altstack_;
    child->regs_ = regs_;
    child->fp_state_ = fp_state_;
    child->fp_saved_ = true;  // installed in its context before it first runs
    child->regs_.rax = 0;
    if (!a.stack.IsNull()) child->regs_.rsp = a.stack.value();
    if (flags & CLONE_SETTLS) child->regs_.fs_base = a.tls;
    if (flags & CLONE_CHILD_CLEARTID) child->clear_child_tid_ = a.child_tid;
    if (!(flags & CLONE_VM)) child->rseq_ = rseq_;  // rseq_fork()
    if (flags & CLONE_VFORK) child->vfork_parent_ = shared_from_this();
    kernel_.RegisterTask(child);
    // A tracer that asked for this kind of child traces it too, from its
    // first instruction (ptrace_init_task()): a seized child traps with
    // PTRACE_EVENT_STOP, another one starts with SIGSTOP pending.
    if (ptrace_.tracer != nullptr && !(flags & CLONE_UNTRACED)) {
      event = (flags & CLONE_VFORK)                    ? PTRACE_EVENT_VFORK
              : (flags & CSIGNAL) == SIGCHLD ? PTRACE_EVENT_FORK
                                                       : PTRACE_EVENT_CLONE;
      if ((ptrace_.options & (1u << event)) || (flags & CLONE_PTRACE)) {
        Task* tracer = ptrace_.tracer;
        child->ptrace_.tracer = tracer;
        child->ptrace_.seized = ptrace_.seized;
        child->ptrace_.options = ptrace_.options;
        tracer->ptrace_.tracees.push_back(child);
        child->set_traced(true);
        if (ptrace_.seized) {
          child->ptrace_.trap_pending = true;
        } else {
          siginfo_t info{};
          info.si_signo = SIGSTOP;
          info.si_code = SI_USER;
          (void)child->pending_.Enqueue(info);
        }
      }
      if (!(ptrace_.options & (1u << event))) event = 0;
    }
  }
  // The parent's and child's views of the new tid (CLONE_*_SETTID): the
  // id in the caller's pid namespace and in the child's own.
  int tid;
  {
    absl::MutexLock l(&kernel_.mu());
    tid = Kernel::IdIn(tg_->pid_ns.get(), child->tid());
  }
  if (flags & CLONE_PIDFD) CopyOutObj(a.pidfd_out, static_cast<int32_t>(a.pidfd_fd)).ok();
  if (flags & CLONE_PARENT_SETTID) CopyOutObj(a.parent_tid, static_cast<int32_t>(tid)).ok();
  if (flags & CLONE_CHILD_SETTID) {
    int32_t v = child->vtid();
    mm->CopyOut(a.child_tid, &v, sizeof(v)).ok();
  }
  // Before it runs, so that its first get_mempolicy(2) sees what it inherited.
  MemPolicyOnClone(*this, *child);
  child->Start(std::move(host), handle);
  if (event != 0) PtraceEvent(event, static_cast<uint64_t>(child->tid()));  // global
  if (flags & CLONE_VFORK) {
    // The parent sleeps until the child execs or exits; only a fatal signal
    // ends the wait early (wait_for_vfork_done() is killable). A pause
    // (Kernel::Quiesce) parks it in that wait, as Linux's freezer counts a
    // vfork parent frozen (freezer_do_not_count()): its child, parked before
    // its exec, would keep it from any syscall boundary, and the pause
    // failed after 5 s (a shell's vfork at load 20: 7 of 30 pauses of a
    // `while :; do sleep 1; done` sandbox). While parked, its registers
    // say what a sandbox fork of the paused sandbox resumes it with:
    // restart_syscall(2), whose restart block waits for the fork's copy of
    // the child and returns its id, as this call does.
    struct VforkWait {
      static void Run(Task& t, const std::shared_ptr<Task>& c, int id) {
        struct Args {
          Task* child;
          ThreadGroup* tg;
          Kernel* k;
        } args{c.get(), t.tg_.get(), &t.kernel_};
        absl::MutexLock l(&t.kernel_.mu());
        for (;;) {
          t.kernel_.mu().Await(absl::Condition(
              +[](Args* p) {
                return p->child->vfork_done_ || p->tg->group_exiting || p->k->park_requested();
              },
              &args));
          if (c->vfork_done_ || t.tg_->group_exiting) return;
          const uint64_t rip = t.regs_.rip, rax = t.regs_.rax;
          t.regs_.rip -= 2;  // the syscall instruction, as FinishRestart backs up
          t.regs_.rax = SYS_restart_syscall;
          t.restart_block_ = [c, id](Task& resumed) -> int64_t {
            Run(resumed, c, id);
            return id;
          };
          t.kernel_.ParkTask(t);
          t.regs_.rip = rip;
          t.regs_.rax = rax;
          t.restart_block_ = nullptr;
        }
      }
    };
    VforkWait::Run(*this, child, tid);
  }
  if (flags & CLONE_VFORK) PtraceEvent(PTRACE_EVENT_VFORK_DONE, static_cast<uint64_t>(child->tid()));
  return tid;
}

}  // namespace seedvisor::sentry
