// UnixSocket's control messages: SCM_RIGHTS, SCM_CREDENTIALS and SCM_PIDFD
// in (__scm_send()) and out (scm_recv_unix()).
#include <sys/resource.h>

#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pid_namespace.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/unix_socket.h"
#include "sentry/socket/unix_socket_internal.h"
#include "sentry/vfs/fd_table.h"

namespace seedvisor::sentry {

using namespace unix_internal;  // NOLINT

// ---- Control messages ----

Result<UnixSocket::Control> UnixSocket::ParseControl(Task& t, const std::string& guest) {
  Control c;
  c.cred = CredOf(t);
  c.user = t.creds().ruid;
  c.sender = t.shared_tg();
  if (guest.empty()) return c;
  std::string buf = guest;
  msghdr h{};
  h.msg_control = buf.data();
  h.msg_controllen = buf.size();
  for (cmsghdr* m = CMSG_FIRSTHDR(&h); m; m = CMSG_NXTHDR(&h, m)) {
    if (m->cmsg_len < CMSG_LEN(0) || m->cmsg_len > buf.size()) return Errno(EINVAL);
    if (m->cmsg_level != SOL_SOCKET) return Errno(EINVAL);
    size_t n = m->cmsg_len - CMSG_LEN(0);
    if (m->cmsg_type == SCM_RIGHTS) {
      size_t count = n / sizeof(int);
      if (c.files.size() + count > kMaxFds) return Errno(EINVAL);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(m) + i * sizeof(int), sizeof(int));
        SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(fd));
        c.files.push_back(std::move(f));
      }
    } else if (m->cmsg_type == SCM_CREDENTIALS) {
      if (n != sizeof(ucred)) return Errno(EINVAL);
      ucred u;
      memcpy(&u, CMSG_DATA(m), sizeof(u));
      // __scm_send(): CAP_SYS_ADMIN for another pid, CAP_SETUID/SETGID for
      // other ids; one check of all three here.
      const Credentials& cr = t.creds();
      bool root = cr.HasCap(CAP_SYS_ADMIN) && cr.HasCap(CAP_SETUID) && cr.HasCap(CAP_SETGID);
      if (!root && (u.pid != t.vtgid() ||
                    (u.uid != cr.ruid && u.uid != cr.euid && u.uid != cr.suid) ||
                    (u.gid != cr.rgid && u.gid != cr.egid && u.gid != cr.sgid))) {
        return Errno(EPERM);
      }
      c.cred = u;
      if (t.pid_ns() != nullptr || u.pid != t.tgid()) {
        // __scm_send(): scm->pid follows creds.pid, an id of the sender's
        // pid namespace; kept global, shown in the receiver's (BuildControl).
        // find_get_pid(): an id nobody has (a reaped process's, 0) is ESRCH.
        absl::MutexLock kl(&t.kernel().mu());
        Kernel& k = t.kernel();
        c.cred.pid = Kernel::IdFrom(t.pid_ns(), u.pid);
        if (c.cred.pid <= 0 || (!k.TaskByTid(c.cred.pid) && !k.ThreadGroupByTgid(c.cred.pid))) {
          return Errno(ESRCH);
        }
        if (c.cred.pid != t.tgid()) c.sender = k.ThreadGroupByTgid(c.cred.pid);
      }
    } else {
      return Errno(EINVAL);
    }
  }
  if (!c.files.empty()) {
    // too_many_unix_fds(): more files in flight than RLIMIT_NOFILE already.
    const Credentials& cr = t.creds();
    std::lock_guard l(Mu());
    auto it = UserInflight().find(c.user);
    size_t inflight = it == UserInflight().end() ? 0 : it->second;
    if (inflight > t.tg().rlimits[RLIMIT_NOFILE].rlim_cur && !cr.HasCap(CAP_SYS_RESOURCE) &&
        !cr.HasCap(CAP_SYS_ADMIN)) {
      return Errno(ETOOMANYREFS);
    }
  }
  return c;
}

std::string UnixSocket::BuildControl(Task& t, const Ancillary& a, size_t room, int flags,
                                     int* msg_flags) {
  std::string out(room, '\0');
  size_t used = 0;
  // Appends one control message of `len` bytes, or says MSG_CTRUNC (false).
  auto put = [&](int type, const void* data, size_t len) {
    if (used + sizeof(cmsghdr) > room || room - used < CMSG_LEN(len)) {
      *msg_flags |= MSG_CTRUNC;
      return false;
    }
    // SAFETY: `out` is at least a cmsghdr long here, so it is heap storage
    // (past the small-string buffer), aligned for cmsghdr; `used` moves in
    // CMSG_SPACE steps, and the message fits in `room` (checked above).
    auto* c = reinterpret_cast<cmsghdr*>(out.data() + used);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(c), data, len);
    used += std::min(room - used, CMSG_SPACE(len));
    return true;
  };
  // Credentials, files, then the sender's pidfd, as scm_recv_unix() does.
  if (a.want_cred) {
    ucred c = a.cred;
    // scm_recv(): pid_vnr(scm->pid), the number the process had in the
    // reader's namespace, also once reaped; `sender` is that process
    // unless the sender named a thread that leads none (then its id now).
    c.pid = a.sender != nullptr ? PidNumbers::In(a.sender->pid_numbers.get(), t.pid_ns())
                                : t.kernel().IdInUnlocked(t.pid_ns(), c.pid);
    put(SCM_CREDENTIALS, &c, sizeof(ucred));
  }
  if (!a.files.empty()) {
    size_t fit = 0;
    if (used + sizeof(cmsghdr) <= room && room - used >= CMSG_LEN(sizeof(int))) {
      fit = std::min(a.files.size(), (room - used - CMSG_LEN(0)) / sizeof(int));
    }
    if (fit < a.files.size()) *msg_flags |= MSG_CTRUNC;  // the rest are closed
    std::vector<int> fds;
    for (size_t i = 0; i < fit; ++i) {
      auto fd = t.fds().Install(a.files[i], flags & MSG_CMSG_CLOEXEC);
      if (!fd.ok()) {
        *msg_flags |= MSG_CTRUNC;
        break;
      }
      fds.push_back(*fd);
    }
    if (!fds.empty()) put(SCM_RIGHTS, fds.data(), fds.size() * sizeof(int));
  }
  // scm_pidfd_recv(): a pidfd (close-on-exec) of the sender, stale if it
  // is gone; none without room.
  if (a.want_pidfd && a.sender != nullptr) {
    if (used + sizeof(cmsghdr) > room || room - used < CMSG_LEN(sizeof(int))) {
      *msg_flags |= MSG_CTRUNC;
    } else if (auto f = NewPidfd(t, a.sender); f.ok()) {
      if (auto fd = t.fds().Install(*f, /*cloexec=*/true); fd.ok()) {
        put(kScmPidfd, &*fd, sizeof(int));
      } else {
        *msg_flags |= MSG_CTRUNC;
      }
    }
  }
  out.resize(used);
  return out;
}

namespace unix_internal {

Result<FileRef> NewPidfd(Task& t, std::shared_ptr<ThreadGroup> tg) {
  auto f = std::make_shared<PidfdFile>(0);
  absl::MutexLock l(&t.kernel().mu());
  SV_TRY(f->Bind(std::move(tg)));
  return FileRef(std::move(f));
}

}  // namespace unix_internal

}  // namespace seedvisor::sentry
