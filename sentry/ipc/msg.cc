#include "sentry/ipc/msg.h"

#include <linux/capability.h>
#include <sys/msg.h>

#include "absl/strings/str_format.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {
namespace {

// struct msqid64_ds, msginfo on x86-64.
struct GuestMsqidDs {
  GuestIpcPerm perm;
  int64_t stime, rtime, ctime;
  uint64_t cbytes, qnum, qbytes;
  int32_t lspid, lrpid;
  uint64_t unused4, unused5;
};
static_assert(sizeof(GuestMsqidDs) == 120);

struct GuestMsginfo {
  int32_t msgpool, msgmap, msgmax, msgmnb, msgmni, msgssz, msgtql;
  uint16_t msgseg;
};
static_assert(sizeof(GuestMsginfo) == 32);

constexpr int kMsgExcept = 020000;  // MSG_EXCEPT
constexpr int kMsgCopy = 040000;    // MSG_COPY

// do_msgsnd()/do_msgrcv() return -ERESTARTNOHAND for a signal.
Errno Interrupted(Task &t) {
  return Errno(t.ParkInterrupted() ? kERESTARTNOINTR : kERESTARTNOHAND);
}

}  // namespace

Result<int> MsgRegistry::Get(Task &t, int32_t key, int flags) {
  std::lock_guard l(mu_);
  auto check = [](MsgQueue &) -> Status { return {}; };
  auto make = []() -> Result<std::shared_ptr<MsgQueue>> {
    auto q = std::make_shared<MsgQueue>();
    q->ctime = IpcNow();
    return q;
  };
  SV_ASSIGN_OR_RETURN(auto q, reg_.GetOrCreate(t.creds(), key, flags, check, make));
  return q->perm.id;
}

Status MsgRegistry::Send(Task &t, int id, UserAddr msgp, int64_t size, int flags) {
  if (size < 0 || size > kMsgMax) return Errno(EINVAL);
  MsgQueue::Message m;
  SV_TRY(t.CopyInObj(msgp, &m.type));
  if (m.type < 1) return Errno(EINVAL);
  m.text.resize(static_cast<size_t>(size));
  SV_TRY(t.CopyIn(msgp + sizeof(int64_t), m.text.data(), m.text.size()));
  std::unique_lock l(mu_);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<MsgQueue> q, reg_.Get(id));
  SV_TRY(q->perm.Check(t.creds(), 0200));
  for (;;) {
    if (q->perm.deleted) return Errno(EIDRM);
    // msg_fits_inqueue(): both the bytes and the count are bounded by qbytes.
    if (q->bytes + m.text.size() <= q->qbytes && q->messages.size() + 1 <= q->qbytes) break;
    if (flags & IPC_NOWAIT) return Errno(EAGAIN);
    Status w = WaitOn(q->senders, t, l);
    if (q->perm.deleted) return Errno(EIDRM);
    if (!w.ok()) l.unlock();  // ParkInterrupted takes Kernel::mu()
    return Interrupted(t);
  }
  q->bytes += m.text.size();
  q->messages.push_back(std::move(m));
  q->lspid = t.tg().pid_numbers;
  q->stime = IpcNow();
  q->receivers.NotifyAll();
  return {};
}

namespace {

// msgrcv()'s answer: the type, then at most `size` bytes of the text.
Result<uint64_t> CopyOutMessage(Task &t, UserAddr msgp, const MsgQueue::Message &m, int64_t size) {
  size_t n = std::min<size_t>(m.text.size(), static_cast<size_t>(size));
  SV_TRY(t.CopyOutObj(msgp, m.type));
  SV_TRY(t.CopyOut(msgp + sizeof(int64_t), m.text.data(), n));
  return n;
}

}  // namespace

Result<uint64_t> MsgRegistry::Receive(Task &t, int id, UserAddr msgp, int64_t size, int64_t type,
                                      int flags) {
  if (size < 0) return Errno(EINVAL);
  // MSG_COPY (CONFIG_CHECKPOINT_RESTORE, as Debian's kernels have it): a
  // copy of the message at index `type` (from 0), left in the queue; only
  // with IPC_NOWAIT, never with MSG_EXCEPT (do_msgrcv()).
  const bool copy = flags & kMsgCopy;
  if (copy && ((flags & kMsgExcept) || !(flags & IPC_NOWAIT))) return Errno(EINVAL);
  std::unique_lock l(mu_);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<MsgQueue> q, reg_.Get(id));
  SV_TRY(q->perm.Check(t.creds(), 0400));
  for (;;) {
    if (q->perm.deleted) return Errno(EIDRM);
    // find_msg(): the first of a type (or not of it, MSG_EXCEPT), or the
    // first of the lowest type up to -type.
    auto found = q->messages.end();
    if (copy) {
      if (type >= 0 && static_cast<uint64_t>(type) < q->messages.size()) {
        found = q->messages.begin() + type;
      }
    }
    for (auto it = q->messages.begin(); !copy && it != q->messages.end(); ++it) {
      if (type == 0) {
        found = it;
        break;
      }
      if (type > 0) {
        if ((flags & kMsgExcept) ? it->type != type : it->type == type) {
          found = it;
          break;
        }
        continue;
      }
      if (it->type <= -type && (found == q->messages.end() || it->type < found->type)) {
        found = it;
        if (it->type == 1) break;
      }
    }
    if (found != q->messages.end()) {
      if (static_cast<int64_t>(found->text.size()) > size && !(flags & MSG_NOERROR)) {
        return Errno(E2BIG);
      }
      if (copy) {  // the queue and its times stay as they are
        // copy_msg() into a buffer of `size` bytes: a longer message is
        // EINVAL even with MSG_NOERROR (which skipped the E2BIG above).
        if (static_cast<int64_t>(found->text.size()) > size) return Errno(EINVAL);
        MsgQueue::Message m = *found;
        l.unlock();
        return CopyOutMessage(t, msgp, m, size);
      }
      MsgQueue::Message m = std::move(*found);
      q->messages.erase(found);
      q->bytes -= m.text.size();
      q->lrpid = t.tg().pid_numbers;
      q->rtime = IpcNow();
      q->senders.NotifyAll();
      l.unlock();
      return CopyOutMessage(t, msgp, m, size);
    }
    if (flags & IPC_NOWAIT) return Errno(ENOMSG);
    Status w = WaitOn(q->receivers, t, l);
    if (q->perm.deleted) return Errno(EIDRM);
    if (!w.ok()) l.unlock();  // ParkInterrupted takes Kernel::mu()
    return Interrupted(t);
  }
}

Result<uint64_t> MsgRegistry::Ctl(Task &t, int id, int cmd, UserAddr buf) {
  const Credentials &c = t.creds();
  if (cmd == IPC_INFO || cmd == MSG_INFO) {
    GuestMsginfo info{};
    info.msgmax = kMsgMax;
    info.msgmnb = kMsgMnb;
    info.msgmni = kMsgMni;
    info.msgssz = 16;
    info.msgseg = 0xffff;
    info.msgpool = kMsgMni * kMsgMnb / 1024;
    info.msgmap = kMsgMnb;
    info.msgtql = kMsgMnb;
    int max;
    {
      std::lock_guard l(mu_);
      if (cmd == MSG_INFO) {
        int queues = 0, msgs = 0, bytes = 0;
        reg_.ForEach([&](int, MsgQueue &q) {
          ++queues;
          msgs += static_cast<int>(q.messages.size());
          bytes += static_cast<int>(q.bytes);
        });
        info.msgpool = queues;
        info.msgmap = msgs;
        info.msgtql = bytes;
      }
      max = reg_.MaxIndex();
    }
    SV_TRY(t.CopyOutObj(buf, info));
    return static_cast<uint64_t>(max);
  }
  if (cmd == IPC_STAT || cmd == MSG_STAT || cmd == MSG_STAT_ANY) {
    GuestMsqidDs ds{};
    int ret = 0;
    {
      std::lock_guard l(mu_);
      std::shared_ptr<MsgQueue> q;
      if (cmd == IPC_STAT) {
        SV_ASSIGN_OR_RETURN(q, reg_.Get(id));
      } else {
        SV_ASSIGN_OR_RETURN(q, reg_.GetByIndex(id));
        ret = q->perm.id;
      }
      if (cmd != MSG_STAT_ANY) SV_TRY(q->perm.Check(c, 0400));
      ds.perm = q->perm.ToGuest();
      ds.stime = q->stime;
      ds.rtime = q->rtime;
      ds.ctime = q->ctime;
      ds.cbytes = q->bytes;
      ds.qnum = q->messages.size();
      ds.qbytes = q->qbytes;
      // As the caller's pid namespace numbered them (pid_vnr()).
      ds.lspid = PidNumbers::In(q->lspid.get(), t.pid_ns());
      ds.lrpid = PidNumbers::In(q->lrpid.get(), t.pid_ns());
    }
    SV_TRY(t.CopyOutObj(buf, ds));
    return static_cast<uint64_t>(ret);
  }
  GuestMsqidDs in{};
  if (cmd == IPC_SET) SV_TRY(t.CopyInObj(buf, &in));
  std::lock_guard l(mu_);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<MsgQueue> q, reg_.Get(id));
  switch (cmd) {
    case IPC_SET:
      SV_TRY(q->perm.CheckOwner(c));
      // msgctl_down(): raising msg_qbytes past msgmnb takes CAP_SYS_RESOURCE.
      if (in.qbytes > static_cast<uint64_t>(kMsgMnb) && !c.HasCap(CAP_SYS_RESOURCE)) {
        return Errno(EPERM);
      }
      q->qbytes = in.qbytes;
      q->perm.Set(in.perm);
      q->ctime = IpcNow();
      q->senders.NotifyAll();  // more room, maybe
      return 0;
    case IPC_RMID:
      SV_TRY(q->perm.CheckOwner(c));
      reg_.Remove(*q);
      q->senders.NotifyAll();
      q->receivers.NotifyAll();
      return 0;
    default:
      return Errno(EINVAL);
  }
}

std::string MsgRegistry::ProcText(const PidNamespace *reader) {
  std::string out =
      "       key      msqid perms      cbytes       qnum lspid "
      "lrpid   uid   gid  cuid  cgid      "
      "stime      rtime      ctime\n";
  std::lock_guard l(mu_);
  reg_.ForEach([&](int, MsgQueue &q) {
    const IpcPerm &p = q.perm;
    // sysvipc_msg_proc_show(): the pids as the reader's pid namespace
    // numbered them.
    out += absl::StrFormat("%10d %10d  %4o  %10u %10u %5d %5d %5u %5u %5u %5u %10d %10d %10d\n",
                           p.key, p.id, p.mode, q.bytes, q.messages.size(),
                           PidNumbers::In(q.lspid.get(), reader),
                           PidNumbers::In(q.lrpid.get(), reader), p.uid, p.gid, p.cuid, p.cgid,
                           q.stime, q.rtime, q.ctime);
  });
  return out;
}

}  // namespace seedvisor::sentry
