#include "sentry/kernel/pidfd.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

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

absl::Status PidfdFile::AdoptInForkChild(ForkFileContext&) {
  if (tg_ == nullptr || tg_->exit_event_fd < 0) return absl::OkStatus();
  // The exit eventfd is only readiness: readable once the process exited.
  // Every pidfd of the process does this; the later ones are no-ops in effect.
  int fd = eventfd(tg_->state != ThreadGroup::State::kAlive ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return absl::InternalError(absl::StrCat("pidfd: eventfd: ", strerror(errno)));
  int r = dup3(fd, tg_->exit_event_fd, O_CLOEXEC);  // the number stays: exit paths hold it
  int e = errno;
  close(fd);
  if (r < 0) return absl::InternalError(absl::StrCat("pidfd: dup3: ", strerror(e)));
  return absl::OkStatus();
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
