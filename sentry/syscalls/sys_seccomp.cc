// seccomp(2) and prctl(PR_SET_SECCOMP/PR_GET_SECCOMP): a guest installs its
// own filters; Task::SeccompAllows() runs them (sentry/kernel/seccomp.h).
// SECCOMP_FILTER_FLAG_NEW_LISTENER returns the fd of the filter's listener
// (sentry/kernel/seccomp_listener.h), where its USER_NOTIF calls wait for a
// supervisor's answer.
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>

#include "seccomp/bpf.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/seccomp_listener.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {
namespace {

// Flags we take (SECCOMP_FILTER_FLAG_MASK).
constexpr uint32_t kFilterFlags = SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG |
                                  SECCOMP_FILTER_FLAG_SPEC_ALLOW |
                                  SECCOMP_FILTER_FLAG_TSYNC_ESRCH |
                                  SECCOMP_FILTER_FLAG_NEW_LISTENER |
                                  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;

// struct sock_fprog as x86-64 lays it out.
struct GuestFprog {
  uint16_t len;
  uint16_t pad[3];
  uint64_t filter;
};
static_assert(sizeof(GuestFprog) == sizeof(sock_fprog));

// seccomp_may_assign_mode(): a mode, once set, is never changed to another.
bool MayAssign(const SeccompState& s, int mode) {
  return s.mode == SECCOMP_MODE_DISABLED || s.mode == mode;
}

SyscallReturn SetStrict(Task& t) {
  SeccompState s = t.seccomp();
  if (!MayAssign(s, SECCOMP_MODE_STRICT)) return Errno(EINVAL);
  s.mode = SECCOMP_MODE_STRICT;
  t.set_seccomp(std::move(s));
  return 0;
}

// seccomp_prepare_user_filter(): the program from the guest, checked.
Result<std::shared_ptr<SeccompFilter>> PrepareFilter(Task& t, UserAddr uprog) {
  GuestFprog fp;
  SV_TRY(t.CopyInObj(uprog, &fp));
  if (fp.len == 0 || fp.len > BPF_MAXINSNS) return Errno(EINVAL);
  // Without no_new_privs a filter could confuse a set-ID program it execs.
  if (!t.creds().no_new_privs && !t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EACCES);
  // The last task to let go of the filter hangs its listener up
  // (__seccomp_filter_orphan()): POLLHUP.
  std::shared_ptr<SeccompFilter> f(new SeccompFilter, [](SeccompFilter* p) {
    if (p->listener) p->listener->FilterGone();
    delete p;
  });
  f->prog.resize(fp.len);
  SV_TRY(t.CopyIn(UserAddr(fp.filter), f->prog.data(), fp.len * sizeof(sock_filter)));
  if (int err = seccomp::Check(f->prog); err != 0) return Errno(err);
  return f;
}

// has_duplicate_listener(): one filter of a stack may have a listener
// (a closed one no longer counts).
bool HasListener(const SeccompFilter* f) {
  for (; f != nullptr; f = f->prev.get()) {
    if (f->listener && f->listener->attached()) return true;
  }
  return false;
}

// Puts `f` on top of t's stack (and its siblings' with TSYNC):
// seccomp_attach_filter().
SyscallReturn AttachFilter(Task& t, uint32_t flags, std::shared_ptr<SeccompFilter> f) {
  // Under Kernel::mu() with TSYNC, so that no sibling is made or changes
  // its filters in between (Linux holds the siglock).
  absl::MutexLock l(&t.kernel().mu());
  SeccompState s = t.seccomp();
  if (!MayAssign(s, SECCOMP_MODE_FILTER)) return Errno(EINVAL);
  if (f->listener && HasListener(s.filter.get())) return Errno(EBUSY);
  // seccomp_attach_filter(): every filter on the path counts, with 4 more each.
  const size_t below = s.filter ? s.filter->path_insns : 0;
  if (f->prog.size() + below > kSeccompMaxPathInsns) return Errno(ENOMEM);
  std::vector<Task*> siblings;
  if (flags & SECCOMP_FILTER_FLAG_TSYNC) {
    // seccomp_can_sync_threads(): each sibling has no filter or one of ours.
    for (Task* o : t.tg().tasks) {
      if (o == &t || o->exited()) continue;
      SeccompState os = o->seccomp();
      if (os.mode == SECCOMP_MODE_DISABLED ||
          (os.mode == SECCOMP_MODE_FILTER && SeccompIsAncestor(os.filter.get(), s.filter.get()))) {
        siblings.push_back(o);
        continue;
      }
      if (flags & SECCOMP_FILTER_FLAG_TSYNC_ESRCH) return Errno(ESRCH);
      return static_cast<uint64_t>(o->tid());  // the thread that could not follow
    }
  }
  f->prev = s.filter;
  f->depth = s.filter ? s.filter->depth + 1 : 1;
  f->path_insns = f->prog.size() + 4 + below;
  s.mode = SECCOMP_MODE_FILTER;
  s.filter = std::move(f);
  t.set_seccomp(s);
  // seccomp_sync_threads(): the siblings take our stack, and no_new_privs
  // if we have it (each applies that on its own thread; see SeccompState).
  s.sync_no_new_privs = t.creds().no_new_privs;
  for (Task* o : siblings) o->set_seccomp(s);
  return 0;
}

SyscallReturn SetFilter(Task& t, uint32_t flags, UserAddr uprog) {
  if (flags & ~kFilterFlags) return Errno(EINVAL);
  // With TSYNC a failure returns a thread id and NEW_LISTENER's success an
  // fd: together they need TSYNC_ESRCH (seccomp_set_mode_filter()).
  if ((flags & SECCOMP_FILTER_FLAG_TSYNC) && (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) &&
      !(flags & SECCOMP_FILTER_FLAG_TSYNC_ESRCH)) {
    return Errno(EINVAL);
  }
  // Killable waits are for a listener's notifications only.
  if ((flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) &&
      !(flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)) {
    return Errno(EINVAL);
  }
  SV_ASSIGN_OR_RETURN(std::shared_ptr<SeccompFilter> f, PrepareFilter(t, uprog));
  f->log = (flags & SECCOMP_FILTER_FLAG_LOG) != 0;
  if (!(flags & SECCOMP_FILTER_FLAG_NEW_LISTENER)) return AttachFilter(t, flags, std::move(f));

  // The listener's fd (O_CLOEXEC) is taken before the filter goes on, so
  // that EMFILE leaves no filter; any later failure gives it back.
  SV_ASSIGN_OR_RETURN(
      std::shared_ptr<SeccompListener> listener,
      SeccompListener::Create((flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) != 0));
  f->listener = listener;
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(std::make_shared<SeccompListenerFile>(listener),
                                              /*cloexec=*/true, 0, file_internal::FdLimit(t)));
  SyscallReturn r = AttachFilter(t, flags, std::move(f));
  if (!r.ok()) {
    // Dropped here, outside the kernel's lock: its release detaches.
    Result<FileRef> gone = t.fds().Remove(fd);
    return r;
  }
  return static_cast<uint64_t>(fd);
}

}  // namespace

SyscallReturn DoSeccomp(Task& t, uint32_t op, uint32_t flags, UserAddr uargs) {
  switch (op) {
    case SECCOMP_SET_MODE_STRICT:
      if (flags != 0 || !uargs.IsNull()) return Errno(EINVAL);
      return SetStrict(t);
    case SECCOMP_SET_MODE_FILTER:
      return SetFilter(t, flags, uargs);
    case SECCOMP_GET_ACTION_AVAIL: {
      if (flags != 0) return Errno(EINVAL);
      uint32_t action;
      SV_TRY(t.CopyInObj(uargs, &action));
      return SeccompActionKnown(action) ? SyscallReturn(0) : Errno(EOPNOTSUPP);
    }
    case SECCOMP_GET_NOTIF_SIZES: {
      if (flags != 0) return Errno(EINVAL);
      seccomp_notif_sizes sizes{sizeof(seccomp_notif), sizeof(seccomp_notif_resp),
                                sizeof(seccomp_data)};
      SV_TRY(t.CopyOutObj(uargs, sizes));
      return 0;
    }
    default:
      return Errno(EINVAL);
  }
}

SyscallReturn SysSeccomp(Task& t, const SyscallArgs& a) {
  return DoSeccomp(t, a.Uint(0), a.Uint(1), a.Addr(2));
}

// prctl_set_seccomp(): no flags, and strict mode ignores the pointer.
SyscallReturn PrctlSetSeccomp(Task& t, const SyscallArgs& a) {
  switch (a.Ulong(1)) {
    case SECCOMP_MODE_STRICT:
      return DoSeccomp(t, SECCOMP_SET_MODE_STRICT, 0, UserAddr());
    case SECCOMP_MODE_FILTER:
      return DoSeccomp(t, SECCOMP_SET_MODE_FILTER, 0, a.Addr(2));
    default:
      return Errno(EINVAL);
  }
}

}  // namespace seedvisor::sentry
