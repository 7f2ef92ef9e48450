#include "sentry/kernel/pidfd.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "sentry/kernel/task.h"

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

ThreadExitEvent::~ThreadExitEvent() { close(fd); }

void ThreadExitEvent::Signal() const {
  uint64_t one = 1;
  (void)!write(fd, &one, sizeof(one));  // as SignalExitEvent: once per thread
}

PidfdFile::PidfdFile(int flags) : FileDescription(O_RDWR | (flags & O_NONBLOCK)) {
  if (flags & kPidfdThread) KeepCreationFlag(kPidfdThread);
}

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

Status PidfdFile::BindThread(const std::shared_ptr<Task>& task) {
  if (task->tid() == task->tgid()) {
    // The leader's: readable once the whole process has exited, as a
    // process pidfd (pidfd_poll(): a leader that exits before its other
    // threads is a zombie that does not count, delay_group_leader()).
    SV_TRY(Bind(task->shared_tg()));
    thread_ = task;
    thread_tid_ = task->tid();
    return {};
  }
  std::shared_ptr<ThreadExitEvent>& ev = task->thread_exit_event_;
  if (ev == nullptr) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return Errno(errno);
    ev = std::make_shared<ThreadExitEvent>(fd);
    if (task->exited()) ev->Signal();
  }
  thread_exit_ = ev;
  exit_fd_.store(ev->fd);
  thread_ = task;
  thread_tid_ = task->tid();
  tg_ = task->shared_tg();
  return {};
}

std::shared_ptr<Task> PidfdFile::LiveThread() const {
  std::shared_ptr<Task> t = thread_.lock();
  return t && !t->exited() ? t : nullptr;
}

namespace {

// A sandbox fork's copy of an exit eventfd: a new one, as readable as the
// seed's was, under the same number (the exit paths hold the number).
absl::Status RenewExitEventFd(int number, bool readable) {
  int fd = eventfd(readable ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return absl::InternalError(absl::StrCat("pidfd: eventfd: ", strerror(errno)));
  int r = dup3(fd, number, O_CLOEXEC);
  int e = errno;
  close(fd);
  if (r < 0) return absl::InternalError(absl::StrCat("pidfd: dup3: ", strerror(e)));
  return absl::OkStatus();
}

}  // namespace

absl::Status PidfdFile::AdoptInForkChild(ForkFileContext&) {
  // The exit eventfd is only readiness: readable once the process (the
  // thread) exited. Every pidfd of it does this; the later ones are no-ops
  // in effect.
  if (thread_exit_ != nullptr) {
    return RenewExitEventFd(thread_exit_->fd, LiveThread() == nullptr);
  }
  if (tg_ == nullptr || tg_->exit_event_fd < 0) return absl::OkStatus();
  return RenewExitEventFd(tg_->exit_event_fd, tg_->state != ThreadGroup::State::kAlive);
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
