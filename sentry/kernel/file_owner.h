// File owners and SIGIO: fcntl(F_SETOWN, F_SETOWN_EX) name the task,
// process or process group that hears about an O_ASYNC file's readiness;
// files that support it (FileDescription::SupportsAsync) call SendSigio
// when they become readable or writable (kill_fasync()), which sends SIGIO
// or the F_SETSIG signal with si_fd and si_band (send_sigio() in
// fs/fcntl.c).
//
//   SV_TRY(SetFileOwner(t, *f, F_OWNER_PID, pid));   // ESRCH for nobody
//   ...                                               // after a pipe write:
//   SendSigio(t, *reader, POLL_IN);
#ifndef SEEDVISOR_SENTRY_KERNEL_FILE_OWNER_H_
#define SEEDVISOR_SENTRY_KERNEL_FILE_OWNER_H_

#include <fcntl.h>

#include <memory>

#include "sentry/base/errno.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class Kernel;
class PidNumbers;
class Task;

// `type` is F_OWNER_TID, F_OWNER_PID or F_OWNER_PGRP (else EINVAL); `id` 0
// clears the owner. An id that no task, process or group has in t's pid
// namespace is ESRCH (f_setown_ex(): find_vpid() found nothing). The owner
// is the id's PidNumbers (Linux keeps its struct pid): once its task,
// process or group is gone it gets no signal and shows as 0, also after
// the id is given to another. Takes Kernel::mu().
Status SetFileOwner(Task& t, FileDescription& f, int type, int id);
// F_SETOWN, FIOSETOWN, SIOCSPGRP (f_setown()): `who` a process, -`who` a
// process group, 0 nobody; EINVAL for INT_MIN.
Status SetFileOwnerAsSetown(Task& t, FileDescription& f, int who);
// tty_fasync(): O_ASYNC on a terminal gives it an owner if it has none
// (__f_setown() without force): process group `pgrp` (its foreground one)
// if not null, else the calling process. Takes no kernel lock (only `f`'s
// owner's own, FileDescription::UpdateAsyncOwner).
void SetTtyOwnerIfUnset(Task& t, FileDescription& f, std::shared_ptr<const PidNumbers> pgrp);
// F_GETOWN_EX: the owner's type and its id in t's pid namespace; 0 if it
// has none there, or once no task, process or group holds the id it was
// given (f_getown_ex(): pid_task() found none). Takes Kernel::mu().
f_owner_ex FileOwnerFor(Task& t, const FileDescription& f);
// F_GETOWN: the same id, negative for a process group.
int FileOwnerForGetown(Task& t, const FileDescription& f);

// Sends `f`'s owner its signal for `reason` (POLL_IN, POLL_OUT, POLL_MSG,
// POLL_ERR, POLL_PRI, POLL_HUP) if `f` has O_ASYNC (turned on by fcntl or
// FIOASYNC) and an owner. Takes Kernel::mu(): the caller holds no lock of
// the file's.
void SendSigio(Task& t, FileDescription& f, int reason);

// send_sigio(&filp->f_owner, fd, POLL_MSG) as a lease break
// (lease_break_callback()) and dnotify (dnotify_handle_event()) send it:
// `f`'s owner gets SIGIO, or the F_SETSIG signal with si_fd `fd` and
// POLL_MSG, with or without O_ASYNC. Takes Kernel::mu().
void SendSigioMsg(Kernel& k, FileDescription& f, int fd);
// Files whose SIGIO comes from readiness (FileDescription::
// SigioFromReadiness: sockets, terminals, inotify): once O_ASYNC is on
// through fcntl(F_SETFL) or FIOASYNC, their PollFd() is watched edge-
// triggered in a host epoll of the sentry's, and SendReadySigios sends
// POLL_IN for each readable edge (a new arrival: sk_data_ready,
// n_tty's and inotify's kill_fasync()), POLL_HUP/POLL_ERR for a hangup or
// an error, and POLL_OUT for a writable edge the file asked for
// (FileDescription::NoteAsyncOutWanted). Every task calls SendReadySigios
// at the end of each syscall (nothing to do while no file is watched), so
// the signal is queued by the time the call that made the file ready
// returns. A file stays watched until it is released or O_ASYNC goes; a
// sandbox fork's child makes its own epoll and watches its files' own
// PollFd()s.
void WatchAsync(Task& t, const FileRef& f);
void SendReadySigios(Task& t);

// sk_send_sigurg(): urgent data came to socket `f`. Its owner, if it has
// one, gets SIGURG (with or without O_ASYNC: send_sigurg()), and then the
// O_ASYNC owner signal for POLL_PRI. Takes Kernel::mu().
void SendSigurg(Task& t, FileDescription& f);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_FILE_OWNER_H_
