#include "shim/ttrpc/worker_pool.h"

#include <pthread.h>

#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "sentry/base/thread_identity.h"

namespace seedvisor::ttrpc {

struct WorkerPool::State {
  explicit State(int max) : max_threads(max) {}

  // Starts threads while items outnumber idle threads (and starts are
  // allowed). A thread counts as starting until it holds `mu` in Main.
  void StartNeeded(const std::shared_ptr<State>& self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (holds == 0 && !stop && threads < max_threads &&
           static_cast<int>(queue.size()) > idle + starting) {
      auto* arg = new std::shared_ptr<State>(self);
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
      pthread_t t;
      const int err = pthread_create(&t, &attr, &State::Main, arg);
      pthread_attr_destroy(&attr);
      if (err != 0) {
        // The host refused a thread: the items wait for a busy one.
        delete arg;
        return;
      }
      ++threads;
      ++starting;
    }
  }

  static void* Main(void* arg) {
    std::shared_ptr<State> s = std::move(*static_cast<std::shared_ptr<State>*>(arg));
    delete static_cast<std::shared_ptr<State>*>(arg);
    // Its abseil identity, while it still counts as starting: made later, at
    // its first blocking lock (say, a Fork handler waiting for the fork
    // lock), it could coincide with a host fork (sentry/base/thread_identity.h).
    sentry::MakeThreadIdentityNow();
    s->mu.Lock();
    --s->starting;  // this thread's start is over
    for (;;) {
      while (s->queue.empty() && !s->stop) {
        ++s->idle;
        s->work_cv.Wait(&s->mu);
        --s->idle;
      }
      if (s->stop) break;
      std::function<void()> item = std::move(s->queue.front());
      s->queue.pop_front();
      s->mu.Unlock();
      item();
      item = nullptr;  // what it holds goes before the next wait
      s->mu.Lock();
    }
    --s->threads;
    s->mu.Unlock();
    return nullptr;
  }

  absl::Mutex mu;
  absl::CondVar work_cv;  // an item queued, or stop
  std::deque<std::function<void()>> queue ABSL_GUARDED_BY(mu);
  const int max_threads;
  int threads ABSL_GUARDED_BY(mu) = 0;
  int idle ABSL_GUARDED_BY(mu) = 0;      // waiting for an item
  int starting ABSL_GUARDED_BY(mu) = 0;  // created, not yet in Main's loop
  int holds ABSL_GUARDED_BY(mu) = 0;     // NoThreadStarts in force
  bool stop ABSL_GUARDED_BY(mu) = false;
};

WorkerPool::WorkerPool(int max_threads) : s_(std::make_shared<State>(max_threads)) {}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::Run(std::function<void()> item) {
  absl::MutexLock l(&s_->mu);
  if (s_->stop) return;
  s_->queue.push_back(std::move(item));
  s_->work_cv.Signal();
  s_->StartNeeded(s_);
}

void WorkerPool::Stop() {
  absl::MutexLock l(&s_->mu);
  s_->stop = true;
  s_->queue.clear();
  s_->work_cv.SignalAll();
}

int WorkerPool::threads() const {
  absl::MutexLock l(&s_->mu);
  return s_->threads;
}

int WorkerPool::idle_threads() const {
  absl::MutexLock l(&s_->mu);
  return s_->idle;
}

WorkerPool::NoThreadStarts::NoThreadStarts(WorkerPool& pool) : pool_(pool) {
  State& s = *pool_.s_;
  absl::MutexLock l(&s.mu);
  ++s.holds;
  s.mu.Await(absl::Condition(
      +[](State* st) ABSL_NO_THREAD_SAFETY_ANALYSIS { return st->starting == 0; }, &s));
}

WorkerPool::NoThreadStarts::~NoThreadStarts() {
  absl::MutexLock l(&pool_.s_->mu);
  --pool_.s_->holds;
  pool_.s_->StartNeeded(pool_.s_);
}

}  // namespace seedvisor::ttrpc
