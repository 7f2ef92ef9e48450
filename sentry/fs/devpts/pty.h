// Pty: one pseudo-terminal pair inside the sandbox, shared by its master
// (/dev/ptmx) and replica (/dev/pts/N) files.
//
// The pair's state — the line discipline, window size, lock, the session it
// is the controlling terminal of and its foreground process group — lives
// here under one mutex. Blocking reads and writes wait with Task::Block and
// are woken by Task::Notify when the state changes; poll/select/epoll see
// the same state through each end's Readiness fd. Termios, window size and
// job-control ioctls on the master act on the replica's terminal, as Linux's
// tty_pair_get_tty() does.
//
// Lock order: Kernel::mu() before Pty::mu_; signals are sent with mu_
// released.
//
//   SV_ASSIGN_OR_RETURN(auto pty, Pty::Create(index, &kernel, uid));
//   SV_ASSIGN_OR_RETURN(size_t n, pty->Read(task, /*master=*/true, buf, len, false));
#ifndef SEEDVISOR_SENTRY_FS_DEVPTS_PTY_H_
#define SEEDVISOR_SENTRY_FS_DEVPTS_PTY_H_

#include <sys/ioctl.h>

#include <memory>
#include <mutex>
#include <vector>

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"
#include "sentry/fs/devpts/line_discipline.h"
#include "sentry/fs/devpts/readiness.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class Kernel;
class PidNumbers;
class Task;

// True if session `sid` has a live process: its id is still the one it
// was given and some task is in it. The caller holds Kernel::mu().
bool SessionAlive(Kernel& k, const PidNumbers& sid);

class Pty {
 public:
  static Result<std::shared_ptr<Pty>> Create(int index, Kernel* kernel);
  int index() const { return index_; }

  // /dev/pts/N (set once by devpts when it makes the node).
  const InodeRef& node() const { return node_; }
  void set_node(InodeRef n) { node_ = std::move(n); }
  int PollFd(bool master) const { return master ? master_ready_->fd() : replica_ready_->fd(); }
  // Sandbox fork: both ends' readiness fds become the child's own (the
  // buffers and termios are sentry memory). Either end's file calls it;
  // twice is harmless.
  Status AdoptInForkChild() {
    SV_TRY(master_ready_->RecreateInForkChild());
    return replica_ready_->RecreateInForkChild();
  }

  Result<size_t> Read(Task& t, bool master, char* buf, size_t len, bool nonblock);
  Result<size_t> Write(Task& t, bool master, const char* buf, size_t len, bool nonblock);

  // A replica file is being opened: EIO while locked or after the master
  // closed. Without O_NOCTTY a session leader gets this one as its
  // controlling terminal if no session has it (tty_open_proc_set_tty());
  // the caller sets O_NOCTTY if the session already has one. `t` may be null.
  Status ReplicaOpening(Task* t, int flags);
  void ReplicaClosed();
  // The master's last file closed: the replica hangs up (reads 0, writes
  // EIO) and the controlling session's leader gets SIGHUP and SIGCONT
  // (tty_vhangup(), tty_signal_session_leader()).
  void MasterClosed();
  bool locked();
  void set_locked(bool l);

  // The terminal ioctls both ends share (pty_ioctl.cc); ENOTTY for others.
  Result<long> Ioctl(Task& t, bool master, unsigned long cmd, UserAddr arg);

  // True if this pty is the controlling terminal of session `sid` (its
  // numbers, Kernel::NumbersOfLocked: never a later session of the same id).
  bool ControlsSession(const PidNumbers* sid);
  // The foreground process group (TIOCGPGRP's answer), null if none.
  std::shared_ptr<const PidNumbers> foreground_pgrp();
  // disassociate_ctty(1), under Kernel::mu(): if this is the controlling
  // terminal of `session`, whose leader has exited, it no longer is (no
  // session, no foreground group) and its foreground group gets SIGHUP.
  void SessionLeaderExitedLocked(Kernel& k, const PidNumbers& session);
  // TIOCSCTTY's claim (tiocsctty()) for session `sid` and its foreground
  // group `pgid` (global ids): EPERM if another live session has it,
  // unless `steal`.
  Status ClaimForSession(Kernel& k, int sid, int pgid, bool steal);

 private:
  Pty(int index, Kernel* kernel, std::unique_ptr<Readiness> m, std::unique_ptr<Readiness> r);
  Result<size_t> ReadReplicaLocked(Task& t, std::unique_lock<std::mutex>& l, char* buf, size_t len,
                                   bool nonblock);
  // Waits for a state change, a signal (ERESTARTSYS) or the deadline
  // (ETIMEDOUT), with mu_ released meanwhile.
  Status CountReplicaLocked();
  Status Wait(Task& t, std::unique_lock<std::mutex>& l, const timespec* deadline = nullptr);
  // Recomputes both ends' readiness and wakes the waiters. Holds mu_.
  void Changed();
  // Sends `sig` to every process in the foreground process group (or, if
  // `leader_only`, to the session leader). Without mu_.
  void SignalForeground(int sig);
  // `sig` to process group `pgrp`, if its id is still that group's;
  // Locked: the caller holds Kernel::mu().
  void SignalGroup(const PidNumbers& pgrp, int sig);
  static void SignalGroupLocked(Kernel& k, const PidNumbers& pgrp, int sig);

  Result<long> TermiosIoctl(Task& t, unsigned long cmd, UserAddr arg);
  Result<long> JobIoctl(Task& t, bool master, unsigned long cmd, UserAddr arg);

  const int index_;
  Kernel* const kernel_;  // null in unit tests: no signals
  const std::unique_ptr<Readiness> master_ready_;
  const std::unique_ptr<Readiness> replica_ready_;
  InodeRef node_;

  std::mutex mu_;
  LineDiscipline ld_;         // guarded by mu_
  struct winsize ws_ {};      // guarded by mu_
  bool locked_ = true;        // guarded by mu_; TIOCSPTLCK (unlockpt(3))
  int replicas_ = 0;          // open replica files; guarded by mu_
  bool replica_opened_ = false;  // ever: a master read before is EAGAIN, not EIO
  bool hung_up_ = false;      // the master closed; guarded by mu_
  // The session it controls and its foreground process group, as Linux's
  // tty->session and tty->pgrp hold their struct pids: the ids as given,
  // shown in the reader's namespace also once gone; null: none. Guarded
  // by mu_.
  std::shared_ptr<const PidNumbers> session_;
  std::shared_ptr<const PidNumbers> fg_pgrp_;
  std::vector<Task*> waiters_;  // guarded by mu_
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_DEVPTS_PTY_H_
