// PidfdFile: a file that refers to one process (pidfd_open(2),
// clone(CLONE_PIDFD)).
//
// It keeps the ThreadGroup alive (as Linux's pidfd keeps its struct pid), so
// it names the same process for good, also after the pid is reused. It polls
// readable (POLLIN) once the process has exited: its PollFd() is the
// group's exit eventfd (ThreadGroup::exit_event_fd), which task_exit.cc
// signals when the group becomes a zombie. read(2) and write(2) fail with
// EINVAL, as on Linux.
//
//   auto f = std::make_shared<PidfdFile>(O_NONBLOCK);
//   absl::MutexLock l(&k.mu());
//   SV_TRY(f->Bind(tg));
//   SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, /*cloexec=*/true));
#ifndef SEEDVISOR_SENTRY_KERNEL_PIDFD_H_
#define SEEDVISOR_SENTRY_KERNEL_PIDFD_H_

#include <atomic>
#include <memory>
#include <string>

#include "sentry/kernel/thread_group.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class PidfdFile : public FileDescription {
 public:
  // `flags`: O_NONBLOCK or 0; a pidfd is always O_RDWR.
  explicit PidfdFile(int flags);

  // Makes this the pidfd of `tg`, once, under Kernel::mu(). clone() installs
  // the fd before the child exists (so that EMFILE leaves no child), then
  // binds it.
  Status Bind(std::shared_ptr<ThreadGroup> tg);
  // The process, under Kernel::mu(); null only before Bind.
  const std::shared_ptr<ThreadGroup>& thread_group() const { return tg_; }

  Result<size_t> Read(Task&, char*, size_t) override { return Errno(EINVAL); }
  Result<size_t> Write(Task&, const char*, size_t) override { return Errno(EINVAL); }
  Result<struct stat> Stat() override;
  int PollFd() const override { return exit_fd_.load(); }
  std::string DisplayPath() const override { return "anon_inode:[pidfd]"; }
  // Sandbox fork: the process's exit eventfd becomes the child's own, as
  // readable as it was (a fork's exits must not wake the seed's pidfds).
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

 private:
  std::shared_ptr<ThreadGroup> tg_;
  std::atomic<int> exit_fd_{-1};  // tg_'s exit eventfd, owned by tg_
};

// The process of a pidfd, under Kernel::mu(): EBADF if `f` is not one
// (pidfd_send_signal(2)), ESRCH once it has been reaped.
Result<std::shared_ptr<ThreadGroup>> PidfdGroup(FileDescription& f);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_PIDFD_H_
