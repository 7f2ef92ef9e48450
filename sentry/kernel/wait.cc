#include "sentry/kernel/wait.h"

#include <sys/wait.h>

#include <algorithm>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {
namespace {

bool Matches(const Task& t, const ThreadGroup& self, const ThreadGroup& c, const WaitRequest& r) {
  // eligible_child(): a "clone" child (one that reports with a signal
  // other than SIGCHLD, or none) only for __WCLONE, the others only
  // without it; __WALL takes both.
  const bool clone_child = c.exit_signal != SIGCHLD;
  if (clone_child != ((r.options & __WCLONE) != 0) && !(r.options & __WALL)) return false;
  // __WNOTHREAD: only the caller's own children, those whose parent is
  // this thread (do_wait() walks the caller alone, not its whole group). A
  // child without a parent thread (CLONE_PARENT, an adopted orphan) is
  // counted as the group's first thread's, as Linux's find_alive_thread()
  // would have made it.
  if (r.options & __WNOTHREAD) {
    const int owner =
        c.parent_tid != 0 ? c.parent_tid : (self.tasks.empty() ? 0 : self.tasks.front()->tid());
    if (owner != t.tid()) return false;
  }
  switch (r.idtype) {
    case P_PID:
      return c.tgid() == r.id;
    case P_PGID:
      return c.pgid == (r.id == 0 ? self.pgid : r.id);
    default:
      return true;
  }
}

}  // namespace

ChildExit DecodeExitStatus(int st) {
  if (WIFEXITED(st)) return {CLD_EXITED, WEXITSTATUS(st)};
  return {(st & 0x80) ? CLD_DUMPED : CLD_KILLED, WTERMSIG(st)};
}

Result<std::optional<WaitResult>> WaitForChild(Task& t, const WaitRequest& req) {
  Kernel& k = t.kernel();
  // do_wait(): after a wakeup the children are looked at again before a
  // pending signal ends the wait, so a child whose exit signal interrupted
  // us (a handler for SIGCHLD, say) is still reported.
  std::optional<Errno> interrupted;
  for (;;) {
    {
      absl::MutexLock l(&k.mu());
      ThreadGroup& self = t.tg();
      bool any = false;
      // Tracees first: their stops and exits are the tracer's to see
      // (ptrace_do_wait()), whatever __WCLONE says.
      if (std::optional<WaitResult> r = WaitForTracee(t, req, &any)) return r;
      for (auto it = self.children.begin(); it != self.children.end(); ++it) {
        std::shared_ptr<ThreadGroup> c = *it;
        if (!Matches(t, self, *c, req)) continue;
        any = true;
        // A traced leader's exit goes to its tracer first.
        if (c->ptrace_exit_pending) continue;
        WaitResult res;
        res.pid = Kernel::IdIn(t.pid_ns(), c->tgid());  // as the waiter sees it
        if (c->state == ThreadGroup::State::kZombie && (req.options & WEXITED)) {
          res.status = c->exit_status;
          const ChildExit ce = DecodeExitStatus(c->exit_status);
          res.code = ce.code;
          res.child_status = ce.status;
          if (!(req.options & WNOWAIT)) {
            k.ReapLocked(*c);
            self.children_cpu_ns += c->cpu_ns + c->children_cpu_ns;
            self.children_sys_ns += c->sys_ns + c->children_sys_ns;
            // wait_task_zombie(): cmaxrss, the largest of the child's.
            self.children_maxrss_kb = std::max(
                {self.children_maxrss_kb, c->maxrss_kb, c->children_maxrss_kb});
            self.io.Add(c->io);  // wait_task_zombie()
            self.children.erase(it);
          }
          return std::optional<WaitResult>(res);
        }
        if (c->state != ThreadGroup::State::kAlive) continue;
        if ((req.options & WUNTRACED) && c->stopped && c->stop_to_report) {
          if (!(req.options & WNOWAIT)) c->stop_to_report = false;
          res.status = (c->stop_signal << 8) | 0x7f;
          res.code = CLD_STOPPED;
          res.child_status = c->stop_signal;
          return std::optional<WaitResult>(res);
        }
        if ((req.options & WCONTINUED) && c->continue_to_report) {
          if (!(req.options & WNOWAIT)) c->continue_to_report = false;
          res.status = 0xffff;
          res.code = CLD_CONTINUED;
          res.child_status = SIGCONT;
          return std::optional<WaitResult>(res);
        }
      }
      if (!any) return Errno(ECHILD);
      if (req.options & WNOHANG) return std::optional<WaitResult>();
    }
    if (interrupted) return *interrupted;
    if (Status s = t.Block(); !s.ok()) interrupted = s.error();
  }
}

}  // namespace seedvisor::sentry
