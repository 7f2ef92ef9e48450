#include "sentry/sfork/anchor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sentry/base/log.h"
#include "sentry/sfork/dirty_pages.h"
#include "sentry/sfork/sfork.h"

namespace seedvisor::sentry {
namespace {

// In a forked sentry: the write end of its own anchor's life line, held for
// its whole life, and that anchor (alive while the line is open, unless
// killed from outside) with a pidfd of it (WatchOwnAnchor), opened before
// the report, while the anchor is surely unreaped: the seed reaps it only
// once the fork is finished (LetGoOfSpare).
int own_life_fd_ = -1;
pid_t own_anchor_ = -1;
int own_anchor_pidfd_ = -1;
int own_anchor_pidfd_errno_ = 0;  // pidfd_open's, if it failed

}  // namespace

// Leads the process group of a forked sandbox's host processes (its zygote
// and stubs) and kills that group once the forked sentry is gone: when the
// last write end of its life line closes. Only that sentry holds one (the
// seed closes its own once the fork took the anchor; see Spare).
// Before that, it tells the seed which guest pages the fork's stub copies
// wrote (dirty_pages.h: the seed names them down the life line), through
// `report_fd` (-1: none). Between fork and its loop: async-signal-safe
// only.
[[noreturn]] void RunAnchor(int life_fd, int report_fd) {
  setpgid(0, 0);  // the seed does it too: whoever comes first
  // Hold nothing of the sentry's but the life line and the report socket.
  const unsigned lo = static_cast<unsigned>(report_fd < 0 ? life_fd : std::min(life_fd, report_fd));
  const unsigned hi = static_cast<unsigned>(std::max(life_fd, report_fd));
  if (lo > 0) syscall(SYS_close_range, 0, lo - 1, 0);
  if (hi > lo + 1) syscall(SYS_close_range, lo + 1, hi - 1, 0);
  syscall(SYS_close_range, hi + 1, ~0U, 0);
  AnchorReadPlan(life_fd);  // until the end of file: the forked sentry is gone
  AnchorScanAndReport(report_fd, getpid());
  kill(0, SIGKILL);  // our process group: every host process of the sandbox
  _exit(0);
}

void AdoptOwnAnchor(pid_t anchor, int life_fd) {
  if (own_life_fd_ >= 0) close(own_life_fd_);
  if (own_anchor_pidfd_ >= 0) close(own_anchor_pidfd_);
  own_life_fd_ = life_fd;
  own_anchor_ = anchor;
  own_anchor_pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, anchor, 0));
  own_anchor_pidfd_errno_ = own_anchor_pidfd_ < 0 ? errno : 0;
}

pid_t OwnAnchor() { return own_anchor_; }

bool WatchOwnAnchor() {
  if (own_anchor_ <= 0) return false;  // a booted sentry: its zygote is its child
  if (own_anchor_pidfd_ < 0) {
    // ESRCH: gone and reaped already (it cannot be: see own_anchor_pidfd_).
    if (own_anchor_pidfd_errno_ != ESRCH) {
      Log::Warning("sandbox fork: no pidfd of the sandbox's anchor %d (%s): nothing ends its host "
                   "processes should the anchor die first", own_anchor_,
                   std::strerror(own_anchor_pidfd_errno_));
      return false;
    }
  } else {
    // Readable once the anchor has exited (pidfd_open(2)).
    pollfd p = {.fd = own_anchor_pidfd_, .events = POLLIN, .revents = 0};
    for (int r; (r = poll(&p, 1, -1)) <= 0;) {
      if (r < 0 && errno != EINTR) {
        Log::Warning("sandbox fork: waiting on the sandbox's anchor %d: %s", own_anchor_,
                     std::strerror(errno));
        return false;
      }
    }
  }
  // Its group still bears its pid while a member lives, reaped or not.
  kill(-own_anchor_, SIGKILL);
  return true;
}

}  // namespace seedvisor::sentry
