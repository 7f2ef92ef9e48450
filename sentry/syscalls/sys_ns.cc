// unshare(2) and setns(2) (kernel/fork.c ksys_unshare(), kernel/nsproxy.c).
//
// The sandbox is one set of namespaces, its guest's initial ones
// (sentry/fs/proc/ns.cc), except mount, UTS, PID and time: unshare and clone
// (task_clone.cc) make a new UTS namespace with CAP_SYS_ADMIN, a copy of
// the caller's names (Task::uts()), and setns enters another task's
// through its /proc/PID/ns/uts or a pidfd. A new PID namespace
// (sentry/kernel/pid_namespace.h) is the one the caller's next children
// go into (unshare) or the new child's own (clone); setns chooses an
// existing one for the caller's next children. A new mount namespace
// (MountNamespace, sentry/vfs/vfs.h) is a copy of the caller's mounts,
// kept in the task's FsContext (CLONE_NEWNS unshares it); mount(2) and
// umount2(2) (sys_mount.cc) change only the caller's; setns enters
// another's with root and working directory at its root. Every mount is
// private: no propagation between namespaces (sys_mount.cc says exactly
// what mount(2) does). pivot_root(2) is still EPERM. A new time namespace
// (sentry/kernel/time_namespace.h), a copy of where the caller's children
// go, is where its next children go (unshare) or the new child's own
// (clone3); setns enters one, and the caller's vDSO clock follows
// (sentry/loader/vdso_clock.h). unshare can also
// unshare what a task shares
// with others (its fd table and fs context, or nothing: the thread,
// signal-handler and VM cases Linux "pretends" to do for a single-threaded
// caller). A new user namespace (sentry/kernel/user_namespace.h, which
// says what it models) needs no capability, gives every one inside it and
// none outside, and is what lets an unprivileged caller make the others
// in the same call; setns enters a child's with CAP_SYS_ADMIN over it.
// The other new namespaces are EPERM, with CAP_SYS_ADMIN too, because the
// sentry cannot honour them yet:
//   IPC:    System V objects and POSIX queues live in the kernel's one
//           IpcNamespace and MqueueFs, which a sandbox fork copies as such.
//   NET:    the sandbox has one network (a host namespace or its own stack).
//   CGROUP: not written either.
// setns checks what Linux's install() checks (the capabilities, reentering
// one's own user namespace is EINVAL); entering the namespaces every
// process shares changes nothing.
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/ns_ino.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/thread_group.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/kernel/user_namespace.h"
#include "sentry/kernel/uts.h"
#include "sentry/loader/vdso_clock.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/vfs/inode.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

constexpr uint64_t kNewNamespaces = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET |
                                    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWCGROUP |
                                    CLONE_NEWTIME;

// Whether another task than `t` uses t's address space (a CLONE_VM child,
// a vfork parent): current_is_single_threaded()'s question.
bool MmShared(Task& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  for (const auto& other : t.kernel().Tasks()) {
    if (other.get() != &t && !other->exited() && other->shared_mm() == t.shared_mm()) return true;
  }
  return false;
}

// The ns install() checks for one namespace type `type` that the caller
// is in already (validate_ns()); 0 if entering it is allowed.
// `c`: the credentials the caller has once in its new user namespace, if
// it enters one too.
int InstallCheck(Task& t, const Credentials& c, int type, int flags) {
  switch (type) {
    case CLONE_NEWNS:
      // mntns_install()
      if (!c.HasCap(CAP_SYS_ADMIN) || !c.HasCap(CAP_SYS_CHROOT)) return EPERM;
      // fs->users != 1 (Task::fs_shared), for the fs itself
      // (prepare_nsset() enters a copy when more than the mount namespace
      // changes).
      if (flags == CLONE_NEWNS && t.fs_shared()) return EINVAL;
      return 0;
    case CLONE_NEWTIME: {
      // timens_install(): only a single-threaded process.
      absl::MutexLock l(&t.kernel().mu());
      if (t.tg().tasks.size() > 1 || MmShared(t)) return EUSERS;
      break;
    }
    default:
      break;
  }
  return c.HasCap(CAP_SYS_ADMIN) ? 0 : EPERM;
}

// The namespace a setns(2) target names: the nsfs file's own (`type`:
// its type), or the one `of_leader` reads of the pidfd's process's leader;
// ESRCH for a process that is no longer alive.
template <typename Ns>
Result<std::shared_ptr<Ns>> TargetNamespace(Task& t, FileDescription& f, int type,
                                            std::shared_ptr<Ns> (Task::*of_leader)() const) {
  if (type != 0) return std::static_pointer_cast<Ns>(f.dentry()->inode()->NamespaceObject());
  absl::MutexLock l(&t.kernel().mu());
  SV_ASSIGN_OR_RETURN(std::shared_ptr<ThreadGroup> tg, PidfdGroup(f));
  if (tg->leader == nullptr || tg->state != ThreadGroup::State::kAlive) return Errno(ESRCH);
  return (tg->leader->*of_leader)();
}

}  // namespace

SyscallReturn SysUnshare(Task& t, const SyscallArgs& a) {
  uint64_t flags = a.raw[0];
  // ksys_unshare(): what each flag implies, then check_unshare_flags().
  if (flags & CLONE_NEWUSER) flags |= CLONE_THREAD | CLONE_FS;
  if (flags & CLONE_VM) flags |= CLONE_SIGHAND;
  if (flags & CLONE_SIGHAND) flags |= CLONE_THREAD;
  if (flags & CLONE_NEWNS) flags |= CLONE_FS;
  if (flags & ~(CLONE_THREAD | CLONE_FS | CLONE_SIGHAND | CLONE_VM | CLONE_FILES |
                CLONE_SYSVSEM | kNewNamespaces)) {
    return Errno(EINVAL);
  }
  {
    absl::MutexLock l(&t.kernel().mu());
    // "Not implemented, but pretend it works if there is nothing to unshare."
    if ((flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM)) && t.tg().tasks.size() > 1) {
      return Errno(EINVAL);
    }
    if ((flags & (CLONE_SIGHAND | CLONE_VM)) && t.tg().handlers.use_count() > 1) {
      return Errno(EINVAL);
    }
    if ((flags & CLONE_VM) && MmShared(t)) return Errno(EINVAL);
  }
  // unshare_userns(): a new user namespace needs no capability and gives
  // every one in it (sentry/kernel/user_namespace.h); the other new
  // namespaces then need CAP_SYS_ADMIN in it (unshare_nsproxy_namespaces()).
  // Only mount, UTS, PID and time are supported (the header says why).
  Credentials new_creds = t.creds();
  if (flags & CLONE_NEWUSER) {
    std::shared_ptr<UserNamespace> user_ns;
    if (int err = UserNamespace::Create(new_creds, &user_ns); err != 0) return Errno(err);
    UserNamespace::Enter(new_creds, std::move(user_ns));
  }
  if (flags & (kNewNamespaces & ~static_cast<uint64_t>(CLONE_NEWUSER))) {
    if (!new_creds.HasCapInOwnNs(CAP_SYS_ADMIN)) return Errno(EPERM);
    if (flags & (kNewNamespaces & ~static_cast<uint64_t>(CLONE_NEWNS | CLONE_NEWUTS |
                                                         CLONE_NEWPID | CLONE_NEWTIME |
                                                         CLONE_NEWUSER))) {
      return Errno(EPERM);
    }
  }
  std::shared_ptr<PidNamespace> pid_ns;
  if (flags & CLONE_NEWPID) {
    // copy_pid_ns(): once per namespace the caller is in (a second
    // unshare before the first fork is EINVAL), below its own one.
    absl::MutexLock l(&t.kernel().mu());
    if (t.pid_ns_for_children_ != t.tg().pid_ns) return Errno(EINVAL);
    if ((t.pid_ns() ? t.pid_ns()->level() : 0) >= PidNamespace::kMaxLevel) return Errno(ENOSPC);
    pid_ns = std::make_shared<PidNamespace>(t.tg().pid_ns);
  }
  // Nothing changes before every check passed, as in Linux.
  if (pid_ns != nullptr || (flags & CLONE_NEWUSER)) {
    absl::MutexLock l(&t.kernel().mu());
    if (pid_ns != nullptr) t.pid_ns_for_children_ = std::move(pid_ns);
    if (flags & CLONE_NEWUSER) t.mutable_creds() = std::move(new_creds);
  }
  if (flags & CLONE_NEWUTS) t.set_uts(UtsNames::CopyOf(t.uts()));
  // copy_time_ns(): a copy of where our children go, for them; we stay.
  if (flags & CLONE_NEWTIME) {
    t.set_time_ns_for_children(TimeNamespace::CopyOf(t.time_ns_for_children().get()));
  }
  // unshare_fs(), unshare_fd(): a copy only of what another task uses.
  if ((flags & CLONE_FS) && t.fs_shared()) t.set_fs(t.fs_->Fork());
  if (flags & CLONE_NEWNS) {
    // copy_mnt_ns(): a copy of the caller's mounts; the context is the
    // caller's alone now (CLONE_FS above).
    Vfs& vfs = t.kernel().vfs();
    vfs.UnshareMountNamespace(t.fs(), NextNsIno());
  }
  if ((flags & CLONE_FILES) && t.fds_shared()) t.set_fds(t.fds_->Fork());
  // CLONE_SYSVSEM: SEM_UNDO adjustments are kept per process here, which
  // is what an unshared undo list of a single-threaded caller is.
  return 0;
}

SyscallReturn SysSetns(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(a.Int(0)));
  const int nstype = a.Int(1);
  int flags;
  const int type = f->dentry() ? f->dentry()->inode()->NamespaceType() : 0;
  if (type != 0) {
    if (nstype != 0 && nstype != type) return Errno(EINVAL);
    flags = type;
  } else if (PidfdGroup(*f).ok()) {
    // check_setns_flags()
    if (nstype == 0 || (static_cast<uint64_t>(static_cast<unsigned>(nstype)) & ~kNewNamespaces)) {
      return Errno(EINVAL);
    }
    flags = nstype;
  } else {
    return Errno(EINVAL);
  }
  // validate_nsset()'s order: the user namespace first, whose
  // credentials the other parts are checked with.
  Credentials creds = t.creds();
  if (flags & CLONE_NEWUSER) {
    std::shared_ptr<UserNamespace> target;
    if (type != 0) {
      target = std::static_pointer_cast<UserNamespace>(f->dentry()->inode()->NamespaceObject());
    } else {
      absl::MutexLock l(&t.kernel().mu());
      SV_ASSIGN_OR_RETURN(std::shared_ptr<ThreadGroup> tg, PidfdGroup(*f));
      if (tg->leader == nullptr || tg->state != ThreadGroup::State::kAlive) return Errno(ESRCH);
      target = tg->leader->creds().user_ns;
    }
    // userns_install(): no reentering one's own namespace (which would
    // regain capabilities), a single-threaded caller that shares neither
    // its memory nor its fs context, with CAP_SYS_ADMIN in the target.
    if (target == creds.user_ns) return Errno(EINVAL);
    {
      absl::MutexLock l(&t.kernel().mu());
      if (t.tg().tasks.size() > 1 || MmShared(t)) return Errno(EINVAL);
    }
    if (t.fs_shared()) return Errno(EINVAL);
    if (!creds.HasCapIn(target.get(), CAP_SYS_ADMIN)) return Errno(EPERM);
    UserNamespace::Enter(creds, std::move(target));
  }
  for (int type_bit : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWCGROUP,
                       CLONE_NEWNET, CLONE_NEWTIME}) {
    if (!(flags & type_bit)) continue;
    if (int err = InstallCheck(t, creds, type_bit, flags); err != 0) return Errno(err);
  }
  // Every part is resolved and checked before any is installed
  // (validate_nsset() before commit_nsset()): a part that fails changes
  // nothing.
  std::shared_ptr<MountNamespace> mnt;
  if (flags & CLONE_NEWNS) {
    // mntns_install(): the file's namespace, or the pidfd process's.
    if (type != 0) {
      mnt = std::static_pointer_cast<MountNamespace>(f->dentry()->inode()->NamespaceObject());
    } else {
      std::shared_ptr<Task> leader;
      {
        absl::MutexLock l(&t.kernel().mu());
        SV_ASSIGN_OR_RETURN(std::shared_ptr<ThreadGroup> tg, PidfdGroup(*f));
        if (tg->leader == nullptr || tg->state != ThreadGroup::State::kAlive) return Errno(ESRCH);
        leader = t.kernel().TaskByTid(tg->leader->tid());
      }
      std::shared_ptr<FsContext> fs = leader ? leader->shared_fs() : nullptr;
      if (fs == nullptr) return Errno(ESRCH);
      mnt = fs->mnt_ns();
    }
    if (mnt == nullptr) mnt = t.kernel().vfs().init_mount_ns();
  }
  // utsns_install(), timens_install().
  std::shared_ptr<UtsNames> uts;
  if (flags & CLONE_NEWUTS) {
    SV_ASSIGN_OR_RETURN(uts, TargetNamespace<UtsNames>(t, *f, type, &Task::shared_uts));
  }
  std::shared_ptr<TimeNamespace> time;
  if (flags & CLONE_NEWTIME) {
    SV_ASSIGN_OR_RETURN(time, TargetNamespace<TimeNamespace>(t, *f, type, &Task::time_ns));
  }
  if (flags & CLONE_NEWPID) {
    // pidns_install(): the caller's own pid namespace or one below it, for
    // its next children.
    std::shared_ptr<PidNamespace> ns;
    absl::MutexLock l(&t.kernel().mu());
    if (type != 0) {
      ns = std::static_pointer_cast<PidNamespace>(f->dentry()->inode()->NamespaceObject());
    } else {
      SV_ASSIGN_OR_RETURN(std::shared_ptr<ThreadGroup> tg, PidfdGroup(*f));
      if (tg->state != ThreadGroup::State::kAlive) return Errno(ESRCH);
      ns = tg->pid_ns;
    }
    PidNamespace* active = t.pid_ns();
    if (active != nullptr && (ns == nullptr || !active->Contains(ns.get()))) return Errno(EINVAL);
    if (uts != nullptr) t.set_uts(std::move(uts));
    t.pid_ns_for_children_ = std::move(ns);
    if (flags & CLONE_NEWUSER) t.mutable_creds() = creds;
  } else if (uts != nullptr) {
    t.set_uts(std::move(uts));
  }
  if ((flags & CLONE_NEWUSER) && !(flags & CLONE_NEWPID)) {
    absl::MutexLock l(&t.kernel().mu());
    t.mutable_creds() = creds;
  }
  if (flags & CLONE_NEWTIME) {
    // The caller and its next children live in it from now on, and its
    // vDSO clock reads it (vdso_join_timens()).
    SV_TRY(SetVdsoClockSyscall(t.mm(), time != nullptr));
    if (time != nullptr) time->Enter();
    t.set_time_ns(time);
    t.set_time_ns_for_children(std::move(time));
  }
  if (mnt != nullptr) {
    // mntns_install(): root and working directory at the namespace's root.
    DentryRef root = mnt->root();
    t.fs().EnterMountNamespace(std::move(mnt), std::move(root));
  }
  return 0;
}

}  // namespace seedvisor::sentry
