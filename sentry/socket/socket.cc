#include "sentry/socket/socket.h"

namespace seedvisor::sentry {

Result<size_t> Socket::Read(Task& t, char* buf, size_t len) {
  SV_ASSIGN_OR_RETURN(MsgOut m, RecvMsg(t, buf, len, 0, 0));
  return m.len;
}

Result<size_t> Socket::Write(Task& t, const char* buf, size_t len) {
  MsgIn m;
  m.data.assign(buf, len);
  m.flags = MSG_NOSIGNAL;  // write(2) gets its SIGPIPE from the dispatcher
  return SendMsg(t, m);
}

}  // namespace seedvisor::sentry
