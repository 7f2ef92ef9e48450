// HostThread: a detached host thread made before the work it will run is
// known, so that the host's refusal (a pids cgroup, threads-max, no memory
// for a stack) is an errno the caller returns — clone(2) fails with EAGAIN —
// instead of std::thread's exception taking the sentry down.
//
//   SV_ASSIGN_OR_RETURN(HostThread host, HostThread::Spawn());
//   ... commit the new task; on failure just return: the thread exits ...
//   std::move(host).Run([task] { task->Run(); });
//
// ServiceThread: the same refusal for a joinable service loop (the timer
// service, the network loop), which its owner stops and joins.
//
//   SV_ASSIGN_OR_RETURN(thread_, ServiceThread::Start([this] { Loop(); }));
//   ... stop_ = true; thread_.Join();
#ifndef SEEDVISOR_SENTRY_KERNEL_HOST_THREAD_H_
#define SEEDVISOR_SENTRY_KERNEL_HOST_THREAD_H_

#include <pthread.h>

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

class ServiceThread {
 public:
  // EAGAIN or ENOMEM when the host will not make a thread.
  static Result<ServiceThread> Start(std::function<void()> fn);

  ServiceThread() = default;  // no thread
  ServiceThread(ServiceThread&& o) noexcept;
  ServiceThread& operator=(ServiceThread&& o) noexcept;
  // A thread still running is joined.
  ~ServiceThread() { Join(); }

  bool joinable() const { return fn_ != nullptr; }
  // Waits for the thread to end; nothing without one.
  void Join();

 private:
  static void* Main(void* arg);

  pthread_t thread_{};
  std::unique_ptr<std::function<void()>> fn_;  // set while a thread runs it
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_HOST_THREAD_H_
