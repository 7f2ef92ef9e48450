// WorkerPool: long-lived threads that run work items, for a server whose
// items may block for long (a ttrpc handler waiting for a process to exit)
// and whose process may be host-forked (a seed's sentry, sentry/sfork).
//
// A thread starts only when an item finds no idle one, and never ends while
// the pool serves: a thread whose item is done waits for the next. A thread
// that starts or ends holds process-wide locks of glibc and abseil for a
// moment (its stack, its abseil identity), and a host fork at that moment
// leaves them held forever in the child. So while a NoThreadStarts exists
// (a fork holds one around its fork()) the pool starts no thread, and
// NoThreadStarts first waits for starts in progress to finish; items that
// need a new thread meanwhile wait in the queue until it is gone.
//
//   WorkerPool pool;
//   pool.Run([] { HandleRequest(); });
//   {
//     WorkerPool::NoThreadStarts hold(pool);
//     pid_t pid = fork();  // no thread of the pool is starting or ending
//   }
#ifndef SEEDVISOR_SHIM_TTRPC_WORKER_POOL_H_
#define SEEDVISOR_SHIM_TTRPC_WORKER_POOL_H_

#include <functional>
#include <memory>

namespace seedvisor::ttrpc {

class WorkerPool {
 public:
  // At most `max_threads` threads; more items wait for one to be free.
  explicit WorkerPool(int max_threads = 256);
  ~WorkerPool();  // Stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `item` on an idle thread, or on a new one, or once one is free.
  void Run(std::function<void()> item);
  // Idle threads end, busy ones once their item returns; queued and later
  // items are dropped. Threads may outlive the pool object.
  void Stop();
  // Threads started and not ended; those of them waiting for an item.
  int threads() const;
  int idle_threads() const;

  // While one exists, no thread of the pool starts or ends (see above).
  class NoThreadStarts {
   public:
    explicit NoThreadStarts(WorkerPool& pool);
    ~NoThreadStarts();
    NoThreadStarts(const NoThreadStarts&) = delete;
    NoThreadStarts& operator=(const NoThreadStarts&) = delete;

   private:
    WorkerPool& pool_;
  };

 private:
  struct State;
  std::shared_ptr<State> s_;  // shared with the threads
};

}  // namespace seedvisor::ttrpc

#endif  // SEEDVISOR_SHIM_TTRPC_WORKER_POOL_H_
