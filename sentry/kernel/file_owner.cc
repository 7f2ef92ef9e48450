#include "sentry/kernel/file_owner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/thread_group.h"

namespace seedvisor::sentry {

namespace {

// send_sigio_to_task()'s band_table, by reason - POLL_IN.
long BandOf(int reason) {
  switch (reason) {
    case POLL_IN:
      return POLLIN | POLLRDNORM;
    case POLL_OUT:
      return POLLOUT | POLLWRNORM | POLLWRBAND;
    case POLL_MSG:
      return POLLIN | POLLRDNORM | POLLMSG;
    case POLL_ERR:
      return POLLERR;
    case POLL_PRI:
      return POLLPRI | POLLRDBAND;
    case POLL_HUP:
      return POLLHUP | POLLERR;
    default:
      return ~0L;
  }
}

// send_sigio()/send_sigurg(): `info` to the task, process or process group
// that `o` names, if it is still there.
void SignalOwner(Kernel& k, const FileDescription::AsyncOwner& o, const siginfo_t& info) {
  absl::MutexLock l(&k.mu());
  switch (o.type) {
    case F_OWNER_TID:
      if (auto task = k.TaskByTid(o.id); task && !task->exited()) {
        k.SendTaskSignal(*task, info).ok();
      }
      return;
    case F_OWNER_PID:
      if (auto tg = k.ThreadGroupByTgid(o.id); tg && tg->state == ThreadGroup::State::kAlive) {
        k.SendGroupSignal(*tg, info).ok();
      }
      return;
    default: {
      std::vector<ThreadGroup*> sent;
      for (const auto& task : k.Tasks()) {
        ThreadGroup& tg = task->tg();
        if (tg.pgid != o.id || tg.state != ThreadGroup::State::kAlive) continue;
        if (std::find(sent.begin(), sent.end(), &tg) != sent.end()) continue;
        sent.push_back(&tg);
        k.SendGroupSignal(tg, info).ok();
      }
    }
  }
}

}  // namespace

Status SetFileOwner(Task& t, FileDescription& f, int type, int id) {
  if (type != F_OWNER_TID && type != F_OWNER_PID && type != F_OWNER_PGRP) return Errno(EINVAL);
  if (id != 0) {
    // find_vpid(): any task, process or group with that number.
    if (id < 0) return Errno(ESRCH);
    Kernel& k = t.kernel();
    absl::MutexLock l(&k.mu());
    bool found = k.TaskByTid(id) != nullptr;
    for (const auto& task : k.Tasks()) {
      if (found) break;
      found = task->tg().pgid == id;
    }
    if (!found) return Errno(ESRCH);
  }
  f.UpdateAsyncOwner([type, id](FileDescription::AsyncOwner& o) {
    o.type = type;
    o.id = id;
  });
  return {};
}

Status SetFileOwnerAsSetown(Task& t, FileDescription& f, int who) {
  if (who == INT_MIN) return Errno(EINVAL);  // -who would overflow
  return SetFileOwner(t, f, who < 0 ? F_OWNER_PGRP : F_OWNER_PID, who < 0 ? -who : who);
}

int FileOwnerForGetown(const FileDescription& f) {
  FileDescription::AsyncOwner o = f.async_owner();
  return o.type == F_OWNER_PGRP ? -o.id : o.id;
}

void SendSigio(Task& t, FileDescription& f, int reason) {
  if (!(f.flags() & O_ASYNC)) return;
  FileDescription::AsyncOwner o = f.async_owner();
  // No owner, or O_ASYNC came with open(2), which registers no fasync entry.
  if (o.id == 0 || o.fd < 0) return;
  siginfo_t info{};
  if (o.sig != 0) {
    info.si_signo = o.sig;
    info.si_code = reason;
    info.si_band = BandOf(reason);
    info.si_fd = o.fd;
  } else {
    info.si_signo = SIGIO;
    info.si_code = SI_KERNEL;  // SEND_SIG_PRIV
  }
  SignalOwner(t.kernel(), o, info);
}

void SendSigurg(Task& t, FileDescription& f) {
  FileDescription::AsyncOwner o = f.async_owner();
  if (o.id == 0) return;
  siginfo_t info{};
  info.si_signo = SIGURG;
  info.si_code = SI_KERNEL;  // SEND_SIG_PRIV
  SignalOwner(t.kernel(), o, info);
  SendSigio(t, f, POLL_PRI);
}

}  // namespace seedvisor::sentry
