// System V message queues (msgget(2), msgsnd(2), msgrcv(2), msgctl(2)) of
// one IPC namespace, as ipc/msg.c behaves: a queue holds messages in
// arrival order within msg_qbytes; a blocked sender or receiver waits on the
// queue's WaitQueue and re-checks on every change; a signal ends the wait
// with EINTR unless no handler runs (ERESTARTNOHAND), a park restarts it
// unseen; IPC_RMID wakes everyone to EIDRM.
#ifndef SEEDVISOR_SENTRY_IPC_MSG_H_
#define SEEDVISOR_SENTRY_IPC_MSG_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"
#include "sentry/ipc/ipc_object.h"
#include "sentry/vfs/waiter.h"

namespace seedvisor::sentry {

// Linux's defaults (/proc/sys/kernel/msg*).
inline constexpr int64_t kMsgMax = 8192, kMsgMnb = 16384;
inline constexpr int kMsgMni = 32000;

struct MsgQueue {
  struct Message {
    int64_t type;
    std::string text;
  };
  IpcPerm perm;
  std::deque<Message> messages;
  uint64_t bytes = 0;
  uint64_t qbytes = kMsgMnb;
  IpcPid lspid, lrpid;
  int64_t stime = 0, rtime = 0, ctime = 0;
  WaitQueue senders, receivers;
};

class MsgRegistry : public IpcFamily<MsgQueue> {
 public:
  MsgRegistry() : IpcFamily(kMsgMni) {}
  Result<int> Get(Task &t, int32_t key, int flags);
  // msgsnd(2): `msgp` points at {long mtype; char mtext[size]}.
  Status Send(Task &t, int id, UserAddr msgp, int64_t size, int flags);
  // msgrcv(2): the number of bytes of text copied.
  Result<uint64_t> Receive(Task &t, int id, UserAddr msgp, int64_t size, int64_t type, int flags);
  Result<uint64_t> Ctl(Task &t, int id, int cmd, UserAddr buf);
  // /proc/sysvipc/msg, its pids as pid namespace `reader` (null: the
  // sandbox's) shows them.
  std::string ProcText(const PidNamespace *reader);
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_IPC_MSG_H_
