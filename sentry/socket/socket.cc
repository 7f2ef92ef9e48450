#include "sentry/socket/socket.h"

#include <algorithm>
#include <climits>
#include <net/if.h>
#include <sys/ioctl.h>

#include "sentry/kernel/file_owner.h"
#include "sentry/kernel/task.h"
#include "sentry/socket/if_ioctl.h"

namespace seedvisor::sentry {

void PutCmsg(MsgOut* out, size_t room, int level, int type, const void* data, size_t len) {
  size_t used = out->control.size();
  size_t left = room > used ? room - used : 0;
  if (left < sizeof(cmsghdr)) {
    out->flags |= MSG_CTRUNC;
    return;
  }
  size_t cmlen = CMSG_LEN(len);
  if (cmlen > left) {
    out->flags |= MSG_CTRUNC;
    cmlen = left;
  }
  cmsghdr h{};
  h.cmsg_len = cmlen;
  h.cmsg_level = level;
  h.cmsg_type = type;
  out->control.append(reinterpret_cast<const char*>(&h), sizeof h);
  out->control.append(static_cast<const char*>(data), cmlen - sizeof h);
  // The next message starts aligned (CMSG_SPACE), within the room.
  out->control.resize(used + std::min(CMSG_SPACE(len), left), '\0');
}

Result<size_t> Socket::Read(Task& t, char* buf, size_t len) {
  SV_ASSIGN_OR_RETURN(MsgOut m, RecvMsg(t, buf, len, 0, 0));
  return m.len;
}

Result<size_t> Socket::Write(Task& t, const char* buf, size_t len) {
  MsgIn m;
  m.data.assign(buf, len);
  m.flags = MSG_NOSIGNAL;  // write(2) gets its SIGPIPE from the dispatcher
  Result<size_t> r = SendMsg(t, m);
  if (!r.ok() && r.error() == Errno(EAGAIN)) NoteAsyncOutWanted();  // SOCKWQ_ASYNC_NOSPACE
  return r;
}

Result<long> Socket::CommonIoctl(Task& t, unsigned long cmd, UserAddr arg) {
  switch (cmd) {
    case FIOSETOWN:
    case SIOCSPGRP: {
      int who;
      SV_TRY(t.CopyInObj(arg, &who));
      SV_TRY(SetFileOwnerAsSetown(t, *this, who));  // f_setown()
      return 0L;
    }
    case FIOGETOWN:
    case SIOCGPGRP: {
      int who = FileOwnerForGetown(t, *this);
      SV_TRY(t.CopyOutObj(arg, who));
      return 0L;
    }
    default:
      break;
  }
  // sock_do_ioctl(): what the family did not take goes to dev_ioctl().
  if (IsDeviceIoctl(cmd)) return InterfaceIoctl(t, cmd, arg);
  if (IsInterfaceSetIoctl(cmd)) {
    // The interface setters read their struct ifreq before the privilege
    // check (sock_do_ioctl()'s get_user_ifreq(), inet_ioctl()): a bad
    // buffer is EFAULT. Routes, ARP and bridges check CAP_NET_ADMIN first
    // (ip_rt_ioctl(), arp_ioctl(), br_ioctl_stub()).
    switch (cmd) {
      case SIOCSIFFLAGS: case SIOCSIFMETRIC: case SIOCSIFMTU: case SIOCSIFHWADDR:
      case SIOCSIFSLAVE: case SIOCADDMULTI: case SIOCDELMULTI: case SIOCSIFHWBROADCAST:
      case SIOCSIFMAP: case SIOCSIFNAME: case SIOCSIFTXQLEN: case SIOCSIFADDR:
      case SIOCSIFBRDADDR: case SIOCSIFNETMASK: case SIOCSIFDSTADDR: case SIOCSIFPFLAGS: {
        ifreq ifr;
        SV_TRY(t.CopyInObj(arg, &ifr));
        break;
      }
      default:
        break;
    }
    return Errno(EPERM);
  }
  // sock_do_ioctl(): a socket ioctl (type 0x89: SIOCATMARK of a UDP
  // socket, say) that no one took reads its struct ifreq for dev_ioctl()
  // first (EFAULT), which knows it not either.
  if (_IOC_TYPE(cmd) == 0x89) {
    ifreq ifr;
    SV_TRY(t.CopyInObj(arg, &ifr));
  }
  return Errno(ENOTTY);
}

}  // namespace seedvisor::sentry
