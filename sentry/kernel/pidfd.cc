#include "sentry/kernel/pidfd.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace seedvisor::sentry {

void ThreadGroup::SignalExitEvent() {
  if (exit_event_fd < 0) return;
  uint64_t one = 1;
  // A non-blocking eventfd that nobody reads: the count only ever grows
  // by one per exit, so the write cannot fail for lack of room.
  (void)!write(exit_event_fd, &one, sizeof(one));
}

ThreadGroup::~ThreadGroup() {
  if (exit_event_fd >= 0) close(exit_event_fd);
}

PidfdFile::PidfdFile(int flags) : FileDescription(O_RDWR | (flags & O_NONBLOCK)) {}

Status PidfdFile::Bind(std::shared_ptr<ThreadGroup> tg) {
  if (tg->exit_event_fd < 0) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return Errno(errno);
    tg->exit_event_fd = fd;
    if (tg->state != ThreadGroup::State::kAlive) tg->SignalExitEvent();
  }
  exit_fd_.store(tg->exit_event_fd);
  tg_ = std::move(tg);
  return {};
}

Result<std::shared_ptr<ThreadGroup>> PidfdGroup(FileDescription& f) {
  auto* p = dynamic_cast<PidfdFile*>(&f);
  if (!p || !p->thread_group()) return Errno(EBADF);
  if (p->thread_group()->state == ThreadGroup::State::kReaped) return Errno(ESRCH);
  return p->thread_group();
}

Result<struct stat> PidfdFile::Stat() {
  struct stat st {};
  st.st_mode = 0600;  // an anonymous inode has no file type bits
  st.st_nlink = 1;
  st.st_blksize = 4096;
  st.st_dev = 0xd;  // anon_inodefs
  return st;
}

}  // namespace seedvisor::sentry
