// The terminal ioctls of a pty pair (tty_ioctl(), tty_mode_ioctl() and
// n_tty_ioctl() in Linux), both ends. The master's own (TIOCGPTN,
// TIOCSPTLCK, TIOCGPTPEER) are in pty_file.cc.
#include <signal.h>

#include <cstddef>
#include <cstring>

#include "sentry/fs/devpts/devpts.h"
#include "sentry/fs/devpts/pty.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pid_namespace.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

namespace {

// _IOR/_IOW('T', 0x2A..0x2D, struct termios2): glibc's headers name them
// with a struct it does not define.
constexpr unsigned long kTcGets2 = 0x802c542a;
constexpr unsigned long kTcSets2 = 0x402c542b;
constexpr unsigned long kTcSetsW2 = 0x402c542c;
constexpr unsigned long kTcSetsF2 = 0x402c542d;

// struct termio of TCGETA/TCSETA* (asm-generic/termios.h): the System V
// layout, 16-bit flags and the first NCC (8) control characters. The
// kernel moves it field by field (kernel_termios_to_user_termio(),
// user_termio_to_kernel_termios()): 17 bytes, never the padding.
struct KernelTermio {
  uint16_t c_iflag, c_oflag, c_cflag, c_lflag;
  uint8_t c_line;
  uint8_t c_cc[8];
};
constexpr size_t kTermioBytes = offsetof(KernelTermio, c_cc) + sizeof(KernelTermio::c_cc);

// A TCSETA* sets the low 16 bits of each flag word and keeps the rest.
void MergeTermio(const KernelTermio& o, KernelTermios* k) {
  k->c_iflag = (k->c_iflag & 0xffff0000u) | o.c_iflag;
  k->c_oflag = (k->c_oflag & 0xffff0000u) | o.c_oflag;
  k->c_cflag = (k->c_cflag & 0xffff0000u) | o.c_cflag;
  k->c_lflag = (k->c_lflag & 0xffff0000u) | o.c_lflag;
  k->c_line = o.c_line;
  memcpy(k->c_cc, o.c_cc, sizeof(o.c_cc));
}

struct Caller {
  int tgid, pgid, sid;
  std::shared_ptr<const PidNumbers> session;  // sid's numbers
  bool leader() const { return sid == tgid; }
};

Caller CallerOf(Task& t) {
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  return {t.tgid(), t.tg().pgid, t.tg().sid, k.NumbersOfLocked(t.tg().sid)};
}

}  // namespace

Status Pty::ClaimForSession(Kernel& k, int sid, int pgid, bool steal) {
  absl::MutexLock kl(&k.mu());
  std::lock_guard l(mu_);
  std::shared_ptr<const PidNumbers> session = k.NumbersOfLocked(sid);
  if (session_ != nullptr && session_ != session && SessionAlive(k, *session_) && !steal) {
    return Errno(EPERM);
  }
  session_ = std::move(session);
  fg_pgrp_ = k.NumbersOfLocked(pgid);
  return {};
}

Result<long> Pty::TermiosIoctl(Task& t, unsigned long cmd, UserAddr arg) {
  switch (cmd) {
    case TCGETS:
    case kTcGets2: {
      KernelTermios2 t2{};
      {
        std::lock_guard l(mu_);
        t2.t = ld_.termios();
      }
      t2.c_ispeed = t2.c_ospeed = 38400;
      SV_TRY(t.CopyOut(arg, &t2, cmd == TCGETS ? sizeof(KernelTermios) : sizeof(t2)));
      return 0L;
    }
    case TCSETS:
    case TCSETSW:
    case TCSETSF:
    case kTcSets2:
    case kTcSetsW2:
    case kTcSetsF2: {
      KernelTermios nt{};
      SV_TRY(t.CopyIn(arg, &nt, sizeof(nt)));
      std::lock_guard l(mu_);
      // TCSETSW waits for output to drain: ours is queued for the master,
      // which may never read it, so nothing waits (as for a pty in Linux,
      // whose tty_wait_until_sent() has nothing to wait for).
      if (cmd == TCSETSF || cmd == kTcSetsF2) ld_.FlushInput();
      ld_.SetTermios(nt);
      Changed();
      return 0L;
    }
    case TCGETA: {
      KernelTermio o{};
      {
        std::lock_guard l(mu_);
        const KernelTermios& k = ld_.termios();
        o.c_iflag = static_cast<uint16_t>(k.c_iflag);
        o.c_oflag = static_cast<uint16_t>(k.c_oflag);
        o.c_cflag = static_cast<uint16_t>(k.c_cflag);
        o.c_lflag = static_cast<uint16_t>(k.c_lflag);
        o.c_line = k.c_line;
        memcpy(o.c_cc, k.c_cc, sizeof(o.c_cc));
      }
      SV_TRY(t.CopyOut(arg, &o, kTermioBytes));
      return 0L;
    }
    case TCSETA:
    case TCSETAW:
    case TCSETAF: {
      KernelTermio o{};
      SV_TRY(t.CopyIn(arg, &o, kTermioBytes));
      std::lock_guard l(mu_);
      if (cmd == TCSETAF) ld_.FlushInput();  // TCSETAW: nothing to wait for (TCSETSW)
      KernelTermios k = ld_.termios();
      MergeTermio(o, &k);
      ld_.SetTermios(k);
      Changed();
      return 0L;
    }
    default:
      return Errno(ENOTTY);
  }
}

Result<long> Pty::JobIoctl(Task& t, bool master, unsigned long cmd, UserAddr arg) {
  Caller c = CallerOf(t);
  switch (cmd) {
    case TIOCSCTTY: {
      // tiocsctty(): a session leader without one takes a terminal no
      // other session has (stealing needs arg 1 and CAP_SYS_ADMIN).
      if (ControlsSession(c.session.get()) && c.leader()) return 0L;
      if (!c.leader() || SessionHasPty(c.session.get())) return Errno(EPERM);
      SV_TRY(ClaimForSession(t.kernel(), c.sid, c.pgid, arg.value() == 1 && t.creds().HasCap(CAP_SYS_ADMIN)));
      return 0L;
    }
    case TIOCNOTTY: {
      if (!ControlsSession(c.session.get())) return Errno(ENOTTY);
      if (!c.leader()) return 0L;
      // disassociate_ctty(0): the foreground group gets SIGHUP and SIGCONT.
      std::shared_ptr<const PidNumbers> pgrp;
      {
        std::lock_guard l(mu_);
        pgrp = std::move(fg_pgrp_);
        session_ = fg_pgrp_ = nullptr;
      }
      if (pgrp != nullptr) {
        SignalGroup(*pgrp, SIGHUP);
        SignalGroup(*pgrp, SIGCONT);
      }
      return 0L;
    }
    case TIOCGPGRP:
    case TIOCGSID: {
      // From the replica only the caller's own controlling terminal answers.
      if (!master && !ControlsSession(c.session.get())) return Errno(ENOTTY);
      std::shared_ptr<const PidNumbers> p;
      {
        std::lock_guard l(mu_);
        p = cmd == TIOCGPGRP ? fg_pgrp_ : session_;
      }
      if (cmd == TIOCGSID && p == nullptr) return Errno(ENOTTY);
      // pid_vnr(): the number it was given here, also once gone; 0 if none.
      int v = PidNumbers::In(p.get(), t.pid_ns());
      SV_TRY(t.CopyOut(arg, &v, sizeof(v)));
      return 0L;
    }
    case TIOCSPGRP: {
      if (!ControlsSession(c.session.get())) return Errno(ENOTTY);
      int pgrp;
      SV_TRY(t.CopyIn(arg, &pgrp, sizeof(pgrp)));
      if (pgrp < 0) return Errno(EINVAL);
      Kernel& k = t.kernel();
      absl::MutexLock kl(&k.mu());  // before mu_ (lock order)
      SV_ASSIGN_OR_RETURN(pgrp, k.ForegroundGroupLocked(t.pid_ns(), pgrp, c.sid));
      std::lock_guard l(mu_);
      fg_pgrp_ = k.NumbersOfLocked(pgrp);
      return 0L;
    }
    case TIOCSTI: {
      // Faking input needs the terminal to be the caller's, or CAP_SYS_ADMIN.
      if (!ControlsSession(c.session.get()) && !t.creds().HasCap(CAP_SYS_ADMIN)) {
        return Errno(EPERM);
      }
      char ch;
      SV_TRY(t.CopyIn(arg, &ch, 1));
      std::vector<int> signals;
      {
        std::lock_guard l(mu_);
        ld_.Input(&ch, 1, &signals);
        Changed();
      }
      for (int sig : signals) SignalForeground(sig);
      return 0L;
    }
    default:
      return Errno(ENOTTY);
  }
}

Result<long> Pty::Ioctl(Task& t, bool master, unsigned long cmd, UserAddr arg) {
  {
    std::lock_guard l(mu_);
    // hung_up_tty_ioctl().
    if (!master && hung_up_) return Errno(cmd == TIOCSPGRP ? ENOTTY : EIO);
  }
  switch (cmd) {
    case TCGETS:
    case kTcGets2:
    case TCSETS:
    case TCSETSW:
    case TCSETSF:
    case kTcSets2:
    case kTcSetsW2:
    case kTcSetsF2:
    case TCGETA:
    case TCSETA:
    case TCSETAW:
    case TCSETAF:
      return TermiosIoctl(t, cmd, arg);
    case TIOCGWINSZ: {
      struct winsize ws;
      {
        std::lock_guard l(mu_);
        ws = ws_;
      }
      SV_TRY(t.CopyOut(arg, &ws, sizeof(ws)));
      return 0L;
    }
    case TIOCSWINSZ: {
      struct winsize ws;
      SV_TRY(t.CopyIn(arg, &ws, sizeof(ws)));
      bool changed;
      {
        std::lock_guard l(mu_);
        changed = memcmp(&ws, &ws_, sizeof(ws)) != 0;
        ws_ = ws;
      }
      // tty_do_resize(): the foreground group hears of a change.
      if (changed) SignalForeground(SIGWINCH);
      return 0L;
    }
    case FIONREAD:  // TIOCINQ
    case TIOCOUTQ: {
      int n;
      {
        std::lock_guard l(mu_);
        if (cmd == FIONREAD) {
          n = static_cast<int>(master ? ld_.OutputQueued() : ld_.InputReadable());
        } else {
          n = master ? 0 : static_cast<int>(ld_.OutputQueued());
        }
      }
      SV_TRY(t.CopyOut(arg, &n, sizeof(n)));
      return 0L;
    }
    case TCFLSH: {
      long q = static_cast<long>(arg.value());
      if (q != TCIFLUSH && q != TCOFLUSH && q != TCIOFLUSH) return Errno(EINVAL);
      std::lock_guard l(mu_);
      // The master's input is what the replica wrote.
      if (q != TCOFLUSH) master ? ld_.FlushOutput() : ld_.FlushInput();
      if (q != TCIFLUSH && !master) ld_.FlushOutput();
      Changed();
      return 0L;
    }
    case TCXONC:
      if (arg.value() > TCION) return Errno(EINVAL);
      return 0L;
    case TCSBRK:
    case TCSBRKP:
    case TIOCSBRK:
    case TIOCCBRK:
    case TIOCEXCL:
    case TIOCNXCL:
      return 0L;
    case TIOCGETD: {
      int ldisc = 0;  // N_TTY
      SV_TRY(t.CopyOut(arg, &ldisc, sizeof(ldisc)));
      return 0L;
    }
    case TIOCSETD: {
      int ldisc;
      SV_TRY(t.CopyIn(arg, &ldisc, sizeof(ldisc)));
      return ldisc == 0 ? Result<long>(0L) : Result<long>(Errno(EINVAL));
    }
    default:
      return JobIoctl(t, master, cmd, arg);
  }
}

}  // namespace seedvisor::sentry
