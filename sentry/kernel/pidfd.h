// PidfdFile: a file that refers to one process (pidfd_open(2),
// clone(CLONE_PIDFD)), or to one thread of it (Linux 6.9's PIDFD_THREAD:
// pidfd_open(tid, PIDFD_THREAD), clone(CLONE_PIDFD | CLONE_THREAD)).
//
// It keeps the ThreadGroup alive (as Linux's pidfd keeps its struct pid), so
// it names the same process for good, also after the pid is reused. It polls
// readable (POLLIN) once the process has exited: its PollFd() is the
// group's exit eventfd (ThreadGroup::exit_event_fd), which task_exit.cc
// signals when the group becomes a zombie. A thread pidfd has O_EXCL
// (PIDFD_THREAD) among its file flags and polls readable once its thread
// has exited (ThreadExitEvent, signalled by Task::ExitTask), the leader's
// once the whole process has (as a process pidfd; Linux 6.18); signals sent
// through it go to that thread unless a flag widens them. read(2) and
// write(2) fail with EINVAL, as on Linux.
//
//   auto f = std::make_shared<PidfdFile>(O_NONBLOCK);
//   absl::MutexLock l(&k.mu());
//   SV_TRY(f->Bind(tg));
//   SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, /*cloexec=*/true));
#ifndef SEEDVISOR_SENTRY_KERNEL_PIDFD_H_
#define SEEDVISOR_SENTRY_KERNEL_PIDFD_H_

#include <fcntl.h>

#include <atomic>
#include <memory>
#include <string>

#include "sentry/kernel/thread_group.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class Task;

// pidfd_open(2)'s PIDFD_THREAD: the pidfd names a thread.
inline constexpr int kPidfdThread = O_EXCL;

// A thread's exit eventfd, made for its first thread pidfd and shared by
// the task and its pidfds (closed with the last); readable once the thread
// has exited.
struct ThreadExitEvent {
  explicit ThreadExitEvent(int fd) : fd(fd) {}
  ~ThreadExitEvent();
  ThreadExitEvent(const ThreadExitEvent&) = delete;
  ThreadExitEvent& operator=(const ThreadExitEvent&) = delete;
  void Signal() const;
  const int fd;
};

class PidfdFile : public FileDescription {
 public:
  // `flags`: O_NONBLOCK, kPidfdThread or neither; a pidfd is always O_RDWR.
  explicit PidfdFile(int flags);

  // Makes this the pidfd of `tg`, once, under Kernel::mu(). clone() installs
  // the fd before the child exists (so that EMFILE leaves no child), then
  // binds it.
  Status Bind(std::shared_ptr<ThreadGroup> tg);
  // Makes this (made with kPidfdThread) the pidfd of thread `task`, once,
  // under Kernel::mu(); thread_group() is then the task's process.
  Status BindThread(const std::shared_ptr<Task>& task);
  bool is_thread() const { return (flags() & kPidfdThread) != 0; }
  // A thread pidfd's thread while it has not exited, under Kernel::mu();
  // null once it has (or for a process pidfd).
  std::shared_ptr<Task> LiveThread() const;
  // A thread pidfd's thread's id (global), also once it has exited; 0 for
  // a process pidfd.
  int thread_tid() const { return thread_tid_; }
  // The process, under Kernel::mu(); null only before Bind.
  const std::shared_ptr<ThreadGroup>& thread_group() const { return tg_; }

  Result<size_t> Read(Task&, char*, size_t) override { return Errno(EINVAL); }
  Result<size_t> Write(Task&, const char*, size_t) override { return Errno(EINVAL); }
  Result<struct stat> Stat() override;
  // PIDFD_GET_INFO (pidfd_info.cc).
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  int PollFd() const override { return exit_fd_.load(); }
  std::string DisplayPath() const override { return "anon_inode:[pidfd]"; }
  // Sandbox fork: the process's exit eventfd becomes the child's own, as
  // readable as it was (a fork's exits must not wake the seed's pidfds).
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

 private:
  std::shared_ptr<ThreadGroup> tg_;
  std::atomic<int> exit_fd_{-1};  // tg_'s exit eventfd, owned by tg_
  // A thread pidfd's thread and its exit event (which exit_fd_ is then).
  std::weak_ptr<Task> thread_;
  int thread_tid_ = 0;
  std::shared_ptr<ThreadExitEvent> thread_exit_;
};

// The process of a pidfd, under Kernel::mu(): EBADF if `f` is not one
// (pidfd_send_signal(2)), ESRCH once it has been reaped.
Result<std::shared_ptr<ThreadGroup>> PidfdGroup(FileDescription& f);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_PIDFD_H_
