#include "sentry/kernel/host_thread.h"

#include <pthread.h>

#include <utility>

#include "absl/synchronization/mutex.h"
#include "sentry/base/thread_identity.h"

namespace seedvisor::sentry {

struct HostThread::Handoff {
  absl::Mutex mu;
  bool given ABSL_GUARDED_BY(mu) = false;
  std::function<void()> fn ABSL_GUARDED_BY(mu);
};

Result<HostThread> HostThread::Spawn() {
  auto handoff = std::make_shared<Handoff>();
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return Errno(ENOMEM);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  auto* arg = new std::shared_ptr<Handoff>(handoff);
  pthread_t t;
  const int err = pthread_create(&t, &attr, &HostThread::Main, arg);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    delete arg;
    // pthread_create(3): EAGAIN for a limit (RLIMIT_NPROC, threads-max, a
    // pids cgroup) or no memory for the stack; the guest sees the same.
    return Errno(err == ENOMEM ? ENOMEM : EAGAIN);
  }
  return HostThread(std::move(handoff));
}

HostThread::~HostThread() {
  if (handoff_ == nullptr) return;  // moved from, or Run() was called
  absl::MutexLock l(&handoff_->mu);
  handoff_->given = true;  // with no work: the thread just exits
}

void HostThread::Run(std::function<void()> fn) && {
  std::shared_ptr<Handoff> h = std::move(handoff_);
  absl::MutexLock l(&h->mu);
  h->fn = std::move(fn);
  h->given = true;
}

void* HostThread::Main(void* arg) {
  // Before anything else: a host fork must never find this thread making its
  // abseil identity (thread_identity.h).
  MakeThreadIdentityNow();
  std::shared_ptr<Handoff> h = std::move(*static_cast<std::shared_ptr<Handoff>*>(arg));
  delete static_cast<std::shared_ptr<Handoff>*>(arg);
  std::function<void()> fn;
  {
    absl::MutexLock l(&h->mu);
    h->mu.Await(absl::Condition(&h->given));
    fn = std::move(h->fn);
  }
  h.reset();
  if (fn) fn();
  return nullptr;
}

Result<ServiceThread> ServiceThread::Start(std::function<void()> fn) {
  ServiceThread t;
  t.fn_ = std::make_unique<std::function<void()>>(std::move(fn));
  const int err = pthread_create(&t.thread_, nullptr, &ServiceThread::Main, t.fn_.get());
  if (err != 0) {
    t.fn_.reset();
    return Errno(err == ENOMEM ? ENOMEM : EAGAIN);  // as HostThread::Spawn
  }
  return Result<ServiceThread>(std::move(t));
}

ServiceThread::ServiceThread(ServiceThread&& o) noexcept
    : thread_(o.thread_), fn_(std::move(o.fn_)) {}

ServiceThread& ServiceThread::operator=(ServiceThread&& o) noexcept {
  if (this != &o) {
    Join();
    thread_ = o.thread_;
    fn_ = std::move(o.fn_);
  }
  return *this;
}

void ServiceThread::Join() {
  if (fn_ == nullptr) return;
  pthread_join(thread_, nullptr);
  fn_.reset();
}

void* ServiceThread::Main(void* arg) {
  MakeThreadIdentityNow();  // as HostThread::Main
  (*static_cast<std::function<void()>*>(arg))();
  return nullptr;
}

}  // namespace seedvisor::sentry
