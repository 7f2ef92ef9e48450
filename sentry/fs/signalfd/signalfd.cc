#include "sentry/fs/signalfd/signalfd.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

namespace {

// Every live signalfd, for the signal-queued hook.
std::mutex g_mu;
std::vector<SignalFdFile*>* g_files = new std::vector<SignalFdFile*>;

void OnQueued(int sig) {
  std::lock_guard<std::mutex> l(g_mu);
  for (SignalFdFile* f : *g_files) f->OnSignalQueued(sig);
}

signalfd_siginfo ToSignalfdInfo(const siginfo_t& i) {
  signalfd_siginfo s{};
  s.ssi_signo = static_cast<uint32_t>(i.si_signo);
  s.ssi_errno = i.si_errno;
  s.ssi_code = i.si_code;
  s.ssi_pid = static_cast<uint32_t>(i.si_pid);
  s.ssi_uid = i.si_uid;
  if (i.si_signo == SIGCHLD) {
    s.ssi_status = i.si_status;
    s.ssi_utime = static_cast<uint64_t>(i.si_utime);
    s.ssi_stime = static_cast<uint64_t>(i.si_stime);
  } else if (i.si_code == SI_TIMER) {
    s.ssi_tid = static_cast<uint32_t>(i.si_timerid);
    s.ssi_overrun = static_cast<uint32_t>(i.si_overrun);
    s.ssi_int = i.si_int;
    s.ssi_ptr = reinterpret_cast<uint64_t>(i.si_ptr);
  } else {
    s.ssi_int = i.si_int;
    s.ssi_ptr = reinterpret_cast<uint64_t>(i.si_ptr);
    s.ssi_addr = reinterpret_cast<uint64_t>(i.si_addr);
  }
  return s;
}

}  // namespace

Result<std::shared_ptr<SignalFdFile>> SignalFdFile::Create(Task& t, int flags, SigSet mask) {
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) return Errno(errno);
  auto f = std::make_shared<SignalFdFile>(flags, efd, mask);
  f->Refresh(t);
  return f;
}

SignalFdFile::SignalFdFile(int flags, int host_efd, SigSet mask)
    : HostFdFile(flags, host_efd, "anon_inode:[signalfd]"), mask_(mask & ~kUnblockable) {
  std::lock_guard<std::mutex> l(g_mu);
  g_signal_queued_hook.store(&OnQueued);
  g_files->push_back(this);
}

SignalFdFile::~SignalFdFile() {
  std::lock_guard<std::mutex> l(g_mu);
  g_files->erase(std::remove(g_files->begin(), g_files->end(), this), g_files->end());
}

void SignalFdFile::SetMask(Task& t, SigSet mask) {
  mask_.store(mask & ~kUnblockable);
  Refresh(t);
}

void SignalFdFile::OnSignalQueued(int sig) {
  if (mask() & SigBit(sig)) SetReady(true);
}

void SignalFdFile::SetReady(bool ready) {
  uint64_t v = 1;
  if (ready) {
    (void)!write(host_fd(), &v, sizeof(v));
  } else {
    (void)!read(host_fd(), &v, sizeof(v));
  }
}

void SignalFdFile::Refresh(Task& t) {
  absl::MutexLock l(&t.kernel().mu());
  SetReady(((t.pending().Set() | t.tg().shared_pending.Set()) & mask()) != 0);
}

Result<size_t> SignalFdFile::Read(Task& t, char* buf, size_t len) {
  constexpr size_t kRec = sizeof(signalfd_siginfo);
  if (len < kRec) return Errno(EINVAL);
  for (;;) {
    size_t done = 0;
    {
      absl::MutexLock l(&t.kernel().mu());
      SigSet blocked = ~mask();
      while (done + kRec <= len) {
        siginfo_t info{};
        int sig = t.pending().Dequeue(blocked, &info);
        if (sig == 0) sig = t.tg().shared_pending.Dequeue(blocked, &info);
        if (sig == 0) break;
        signalfd_siginfo s = ToSignalfdInfo(info);
        std::memcpy(buf + done, &s, kRec);
        done += kRec;
      }
      SetReady(((t.pending().Set() | t.tg().shared_pending.Set()) & mask()) != 0);
    }
    if (done > 0) return done;
    if (nonblocking()) return Errno(EAGAIN);
    SV_TRY(WaitFor(t, POLLIN, nullptr));
  }
}

}  // namespace seedvisor::sentry
