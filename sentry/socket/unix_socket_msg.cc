// UnixSocket's data path: sendmsg/recvmsg and their control messages.
#include <poll.h>
#include <unistd.h>

#include <vector>

#include "sentry/kernel/task.h"
#include "sentry/socket/rights.h"
#include "sentry/socket/unix_socket.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

namespace {

constexpr size_t kMaxFds = 253;  // SCM_MAX_FD


ucred CredOf(Task& t) { return ucred{t.tgid(), t.creds().euid, t.creds().egid}; }

}  // namespace

Result<std::string> UnixSocket::ControlToHost(Task& t, const std::string& guest,
                                              const std::string& from, int* rights_fd) {
  *rights_fd = -1;
  if (guest.empty() && from.empty()) return std::string();
  std::string buf = guest;
  msghdr h{};
  h.msg_control = buf.data();
  h.msg_controllen = buf.size();
  std::vector<FileRef> files;
  bool have_cred = false;
  ucred cred = CredOf(t);
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_len < CMSG_LEN(0) || c->cmsg_len > buf.size()) return Errno(EINVAL);
    if (c->cmsg_level != SOL_SOCKET) return Errno(EINVAL);
    size_t n = c->cmsg_len - CMSG_LEN(0);
    if (c->cmsg_type == SCM_RIGHTS) {
      size_t count = n / sizeof(int);
      if (files.size() + count > kMaxFds) return Errno(EINVAL);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(fd));
        files.push_back(std::move(f));
      }
    } else if (c->cmsg_type == SCM_CREDENTIALS) {
      if (n != sizeof(ucred)) return Errno(EINVAL);
      ucred u;
      memcpy(&u, CMSG_DATA(c), sizeof(u));
      // unix(7): the sender may only claim its own ids unless privileged.
      const Credentials& cr = t.creds();
      // __scm_send(): CAP_SYS_ADMIN for another pid, CAP_SETUID/SETGID for
      // other ids; one check of all three here.
      bool root = cr.HasCap(CAP_SYS_ADMIN) && cr.HasCap(CAP_SETUID) && cr.HasCap(CAP_SETGID);
      if (!root && (u.pid != t.tgid() ||
                    (u.uid != cr.ruid && u.uid != cr.euid && u.uid != cr.suid) ||
                    (u.gid != cr.rgid && u.gid != cr.egid && u.gid != cr.sgid))) {
        return Errno(EPERM);
      }
      cred = u;
      have_cred = true;
    } else {
      return Errno(EINVAL);
    }
  }
  if (files.empty() && !have_cred && from.empty()) return std::string();
  SV_ASSIGN_OR_RETURN(*rights_fd, ParkFiles(std::move(files), cred, from));
  std::string out(CMSG_SPACE(sizeof(int)), '\0');
  msghdr o{};
  o.msg_control = out.data();
  o.msg_controllen = out.size();
  cmsghdr* c = CMSG_FIRSTHDR(&o);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), rights_fd, sizeof(int));
  return out;
}

std::string UnixSocket::ControlToGuest(Task& t, const char* host, size_t len, size_t room,
                                       int flags, int* msg_flags, std::string* from) {
  msghdr h{};
  h.msg_control = const_cast<char*>(host);
  h.msg_controllen = len;
  Parcel parcel;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      Parcel p = TakeParcel(fd, flags & MSG_PEEK);
      if (!p.valid) continue;
      *from = p.addr;
      if (flags & MSG_PEEK) p.files.clear();  // a peek does not install files
      parcel = std::move(p);
    }
  }
  bool want_cred;
  ucred cred;
  {
    std::lock_guard<std::mutex> l(mu_);
    want_cred = passcred_;
    cred = parcel.valid ? parcel.cred : peer_cred_;
  }
  std::string out(room, '\0');
  msghdr o{};
  o.msg_control = out.data();
  o.msg_controllen = room;
  size_t used = 0;
  cmsghdr* c = room >= sizeof(cmsghdr) ? CMSG_FIRSTHDR(&o) : nullptr;
  // Credentials first, then files, as scm_recv() does.
  if (want_cred) {
    if (c && room - used >= CMSG_LEN(sizeof(ucred))) {
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_CREDENTIALS;
      c->cmsg_len = CMSG_LEN(sizeof(ucred));
      memcpy(CMSG_DATA(c), &cred, sizeof(ucred));
      used += std::min(room - used, CMSG_SPACE(sizeof(ucred)));
      o.msg_controllen = room;
      c = used + sizeof(cmsghdr) <= room ? reinterpret_cast<cmsghdr*>(out.data() + used) : nullptr;
    } else {
      *msg_flags |= MSG_CTRUNC;
    }
  }
  if (!parcel.files.empty()) {
    size_t fit = 0;
    if (c && room - used >= CMSG_LEN(sizeof(int))) {
      fit = std::min(parcel.files.size(), (room - used - CMSG_LEN(0)) / sizeof(int));
    }
    if (fit < parcel.files.size()) *msg_flags |= MSG_CTRUNC;  // the rest are closed
    if (fit > 0) {
      std::vector<int> fds;
      for (size_t i = 0; i < fit; ++i) {
        auto fd = t.fds().Install(parcel.files[i], flags & MSG_CMSG_CLOEXEC);
        if (!fd.ok()) {
          *msg_flags |= MSG_CTRUNC;
          break;
        }
        fds.push_back(*fd);
      }
      if (!fds.empty()) {
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
        memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
        used += std::min(room - used, CMSG_SPACE(fds.size() * sizeof(int)));
      }
    }
  }
  out.resize(used);
  return out;
}

Result<size_t> UnixSocket::SendMsg(Task& t, const MsgIn& m) {
  std::shared_ptr<UnixSocket> target;
  int out_fd;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!m.addr.empty() && type_ != SOCK_DGRAM) {
      // unix_stream_sendmsg(): an address on a stream is EISCONN/EOPNOTSUPP.
      return Errno(state_ == State::kConnected ? EISCONN : EOPNOTSUPP);
    }
    if (!m.addr.empty() && host_connected_) return Errno(EISCONN);
    if (host_connected_) {
      out_fd = fd_.load();
    } else if (type_ != SOCK_DGRAM) {
      return Errno(ENOTCONN);
    } else if (m.addr.empty()) {
      target = dgram_peer_.lock();
      if (!target) return Errno(ENOTCONN);
    }
  }
  if (!m.addr.empty()) {
    SV_ASSIGN_OR_RETURN(UnixAddr a, UnixAddr::Parse(m.addr));
    SV_ASSIGN_OR_RETURN(target, Lookup(t, a));
    if (target->type_ != SOCK_DGRAM) {
      return Errno(a.kind == UnixAddr::kPath ? EPROTOTYPE : ECONNREFUSED);
    }
  }
  if (target) out_fd = target->inject_fd_;
  // A datagram through a peer's inject end carries our address, so that
  // recvfrom(2) can name the sender (unix(7)); unnamed senders send none.
  std::string from;
  if (target) {
    std::lock_guard<std::mutex> l(mu_);
    if (local_.kind != UnixAddr::kUnnamed) from = local_.ToSockaddr();
  }
  int rights_fd;
  SV_ASSIGN_OR_RETURN(std::string control, ControlToHost(t, m.control, from, &rights_fd));
  iovec iov{const_cast<char*>(m.data.data()), m.data.size()};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  if (!control.empty()) {
    h.msg_control = control.data();
    h.msg_controllen = control.size();
  }
  int hflags = MSG_NOSIGNAL | MSG_DONTWAIT | (m.flags & MSG_EOR);
  auto n = Retry(t, out_fd, Blocking(m.flags), POLLOUT, true, [&] { return sendmsg(out_fd, &h, hflags); });
  if (rights_fd >= 0) {
    if (n.ok()) {
      close(rights_fd);
    } else {
      (void)TakeParcel(rights_fd);  // never sent: drop the parked files
    }
  }
  if (!n.ok()) return n.error();
  return static_cast<size_t>(*n);
}

Result<MsgOut> UnixSocket::RecvMsg(Task& t, char* buf, size_t len, int flags, size_t controllen) {
  int fd;
  std::string peer;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (state_ == State::kListening) return Errno(EINVAL);
    if (type_ != SOCK_DGRAM && state_ != State::kConnected) return Errno(EINVAL);
    fd = fd_.load();
    // unix_copy_addr(): the peer's name, or nothing (length 0) if unnamed.
    if (type_ != SOCK_DGRAM && state_ == State::kConnected && peer_.kind != UnixAddr::kUnnamed) {
      peer = peer_.ToSockaddr();
    }
  }
  std::vector<char> control(CMSG_SPACE(kMaxFds * sizeof(int)) + CMSG_SPACE(sizeof(ucred)));
  int hflags = (flags & (MSG_PEEK | MSG_TRUNC)) | MSG_DONTWAIT | MSG_CMSG_CLOEXEC;
  msghdr h{};
  SV_ASSIGN_OR_RETURN(ssize_t n, Retry(t, fd, Blocking(flags), POLLIN, false, [&] {
                        iovec iov{buf, len};
                        h = msghdr{};
                        h.msg_iov = &iov;
                        h.msg_iovlen = 1;
                        h.msg_control = control.data();
                        h.msg_controllen = control.size();
                        return recvmsg(fd, &h, hflags);
                      }));
  MsgOut out;
  out.len = static_cast<size_t>(n);
  // We always ask the host for MSG_CMSG_CLOEXEC; the guest sees it only if
  // it asked (___sys_recvmsg() echoes the caller's flag).
  out.flags = (h.msg_flags & ~(MSG_CTRUNC | MSG_CMSG_CLOEXEC)) | (flags & MSG_CMSG_CLOEXEC);
  std::string from;
  out.control =
      ControlToGuest(t, control.data(), h.msg_controllen, controllen, flags, &out.flags, &from);
  if ((flags & MSG_WAITALL) && !(flags & MSG_PEEK) && type_ == SOCK_STREAM && n > 0) {
    while (out.len < len) {
      auto more = Retry(t, fd, Blocking(flags), POLLIN, false,
                        [&] { return recv(fd, buf + out.len, len - out.len, MSG_DONTWAIT); });
      if (!more.ok() || *more == 0) break;
      out.len += static_cast<size_t>(*more);
    }
  }
  out.addr = from.empty() ? peer : from;
  return out;
}

}  // namespace seedvisor::sentry
