// HostThread: a detached host thread made before the work it will run is
// known, so that the host's refusal (a pids cgroup, threads-max, no memory
// for a stack) is an errno the caller returns — clone(2) fails with EAGAIN —
// instead of std::thread's exception taking the sentry down.
//
//   SV_ASSIGN_OR_RETURN(HostThread host, HostThread::Spawn());
//   ... commit the new task; on failure just return: the thread exits ...
//   std::move(host).Run([task] { task->Run(); });
#ifndef SEEDVISOR_SENTRY_KERNEL_HOST_THREAD_H_
#define SEEDVISOR_SENTRY_KERNEL_HOST_THREAD_H_

#include <functional>
#include <memory>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

class HostThread {
 public:
  // EAGAIN or ENOMEM when the host will not make a thread.
  static Result<HostThread> Spawn();

  HostThread(HostThread&&) = default;
  HostThread& operator=(HostThread&&) = default;
  // A thread never given work ends without running anything.
  ~HostThread();

  // Hands `fn` to the thread, which runs it and exits.
  void Run(std::function<void()> fn) &&;

 private:
  struct Handoff;
  explicit HostThread(std::shared_ptr<Handoff> h) : handoff_(std::move(h)) {}
  static void* Main(void* arg);

  std::shared_ptr<Handoff> handoff_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_HOST_THREAD_H_
