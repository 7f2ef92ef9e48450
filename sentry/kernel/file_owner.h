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

#include "sentry/base/errno.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class Task;

// `type` is F_OWNER_TID, F_OWNER_PID or F_OWNER_PGRP (else EINVAL); `id` 0
// clears the owner. An id that no task, process or group has is ESRCH
// (f_setown_ex(): find_vpid() found nothing). Takes Kernel::mu().
Status SetFileOwner(Task& t, FileDescription& f, int type, int id);
// F_SETOWN, FIOSETOWN, SIOCSPGRP (f_setown()): `who` a process, -`who` a
// process group, 0 nobody; EINVAL for INT_MIN.
Status SetFileOwnerAsSetown(Task& t, FileDescription& f, int who);
// F_GETOWN: the owner's id, negative for a process group.
int FileOwnerForGetown(const FileDescription& f);

// Sends `f`'s owner its signal for `reason` (POLL_IN, POLL_OUT, POLL_MSG,
// POLL_ERR, POLL_PRI, POLL_HUP) if `f` has O_ASYNC (turned on by fcntl or
// FIOASYNC) and an owner. Takes Kernel::mu(): the caller holds no lock of
// the file's.
void SendSigio(Task& t, FileDescription& f, int reason);

// sk_send_sigurg(): urgent data came to socket `f`. Its owner, if it has
// one, gets SIGURG (with or without O_ASYNC: send_sigurg()), and then the
// O_ASYNC owner signal for POLL_PRI. Takes Kernel::mu().
void SendSigurg(Task& t, FileDescription& f);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_FILE_OWNER_H_
