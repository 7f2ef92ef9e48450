// Priority-inheritance futexes (futex(2): FUTEX_LOCK_PI, FUTEX_LOCK_PI2,
// FUTEX_TRYLOCK_PI, FUTEX_UNLOCK_PI, FUTEX_WAIT_REQUEUE_PI,
// FUTEX_CMP_REQUEUE_PI) and what glibc builds on them: PTHREAD_PRIO_INHERIT
// mutexes, robust or not.
//
// The futex word is the owner's TID | FUTEX_WAITERS | FUTEX_OWNER_DIED;
// the cases check it after every step, as the kernel leaves it
// (futex_lock_pi_atomic(), wake_futex_pi(), handle_futex_death() in
// kernel/futex/pi.c and core.c). Waiters use long timeouts, so a lost
// handoff fails instead of hanging.
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

#ifndef FUTEX_LOCK_PI2
#define FUTEX_LOCK_PI2 13
#endif

namespace syscall_test {
namespace {

long Futex(std::atomic<uint32_t>* w, int op, uint32_t val, const timespec* ts,
           std::atomic<uint32_t>* w2 = nullptr, uint32_t val3 = 0) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), op, val, ts,
                 reinterpret_cast<uint32_t*>(w2), val3);
}

long LockPi(std::atomic<uint32_t>* w, const timespec* ts = nullptr, int op = FUTEX_LOCK_PI) {
  return Futex(w, op, 0, ts);
}
long UnlockPi(std::atomic<uint32_t>* w) { return Futex(w, FUTEX_UNLOCK_PI, 0, nullptr); }
long TrylockPi(std::atomic<uint32_t>* w) { return Futex(w, FUTEX_TRYLOCK_PI, 0, nullptr); }

uint32_t Tid() { return static_cast<uint32_t>(syscall(SYS_gettid)); }

timespec AbsIn(clockid_t clock, int64_t ms) {
  timespec ts;
  clock_gettime(clock, &ts);
  int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000LL;
  ts.tv_sec += ms / 1000 + ns / 1000000000LL;
  ts.tv_nsec = ns % 1000000000LL;
  return ts;
}

// Waits (up to 10 s) until `pred` holds; false if it never did.
template <typename F>
bool Eventually(F pred) {
  for (int i = 0; i < 10000; ++i) {
    if (pred()) return true;
    usleep(1000);
  }
  return pred();
}

// A thread that takes `w` with FUTEX_LOCK_PI, reports, holds it until
// released, then unlocks: the owner other threads contend with.
class Holder {
 public:
  explicit Holder(std::atomic<uint32_t>* w) : w_(w) {
    t_ = std::thread([this] {
      tid_ = Tid();
      lock_result_ = LockPi(w_);
      locked_.store(true);
      while (!release_.load()) usleep(1000);
      unlock_result_ = UnlockPi(w_);
    });
    while (!locked_.load()) usleep(1000);
  }
  ~Holder() { Release(); }
  void Release() {
    release_.store(true);
    if (t_.joinable()) t_.join();
  }
  uint32_t tid() const { return tid_; }
  long lock_result() const { return lock_result_; }
  long unlock_result() const { return unlock_result_; }

 private:
  std::atomic<uint32_t>* w_;
  std::thread t_;
  std::atomic<bool> locked_{false}, release_{false};
  uint32_t tid_ = 0;
  long lock_result_ = -2, unlock_result_ = -2;
};

// A thread blocked in FUTEX_LOCK_PI (20 s deadline) on `w`; once it has the
// lock it records the word and unlocks.
class LockWaiter {
 public:
  explicit LockWaiter(std::atomic<uint32_t>* w) {
    t_ = std::thread([this, w] {
      tid_.store(Tid());
      timespec dl = AbsIn(CLOCK_REALTIME, 20000);
      long r = LockPi(w, &dl);
      if (r == 0) {
        seen_.store(w->load());
        UnlockPi(w);
      }
      result_.store(r);
    });
    // Queued: the waiters bit is set.
    Eventually([w] { return (w->load() & FUTEX_WAITERS) != 0; });
    usleep(20000);
  }
  ~LockWaiter() { Join(); }
  void Join() {
    if (t_.joinable()) t_.join();
  }
  uint32_t tid() const { return tid_.load(); }
  long result() const { return result_.load(); }
  uint32_t seen() const { return seen_.load(); }

 private:
  std::thread t_;
  std::atomic<uint32_t> tid_{0}, seen_{0};
  std::atomic<long> result_{-2};
};

TEST(FutexPi, LockAndUnlockUncontended) {
  std::atomic<uint32_t> w{0};
  ASSERT_EQ(LockPi(&w), 0);
  EXPECT_EQ(w.load(), Tid());  // no FUTEX_WAITERS: nobody waits
  ASSERT_EQ(UnlockPi(&w), 0);
  EXPECT_EQ(w.load(), 0u);
  ASSERT_EQ(LockPi(&w, nullptr, FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG), 0);
  EXPECT_EQ(w.load(), Tid());
  ASSERT_EQ(Futex(&w, FUTEX_UNLOCK_PI | FUTEX_PRIVATE_FLAG, 0, nullptr), 0);
  EXPECT_EQ(w.load(), 0u);
  ASSERT_EQ(TrylockPi(&w), 0);
  EXPECT_EQ(w.load(), Tid());
  ASSERT_EQ(UnlockPi(&w), 0);
  ASSERT_EQ(LockPi(&w, nullptr, FUTEX_LOCK_PI2), 0);
  EXPECT_EQ(w.load(), Tid());
  ASSERT_EQ(UnlockPi(&w), 0);
  EXPECT_EQ(w.load(), 0u);
}

TEST(FutexPi, SelfLockIsEdeadlk) {
  std::atomic<uint32_t> w{Tid()};
  EXPECT_ERRNO(EDEADLK, LockPi(&w));
  EXPECT_ERRNO(EDEADLK, TrylockPi(&w));
  EXPECT_ERRNO(EDEADLK, LockPi(&w, nullptr, FUTEX_LOCK_PI2));
  EXPECT_EQ(w.load(), Tid());  // untouched: no FUTEX_WAITERS
  w.store(Tid() | FUTEX_WAITERS);
  EXPECT_ERRNO(EDEADLK, LockPi(&w));
}

TEST(FutexPi, UnlockOfALockNotOwnedIsEperm) {
  std::atomic<uint32_t> w{0};
  EXPECT_ERRNO(EPERM, UnlockPi(&w));
  Holder h(&w);
  EXPECT_ERRNO(EPERM, UnlockPi(&w));
  EXPECT_EQ(w.load(), h.tid());
  h.Release();
  EXPECT_EQ(h.unlock_result(), 0);
  EXPECT_EQ(w.load(), 0u);
}

TEST(FutexPi, UnlockWithWaitersBitButNoWaiterClearsTheWord) {
  std::atomic<uint32_t> w{Tid() | FUTEX_WAITERS};
  ASSERT_EQ(UnlockPi(&w), 0);
  EXPECT_EQ(w.load(), 0u);
  // The owner-died bit goes too.
  w.store(Tid() | FUTEX_OWNER_DIED);
  ASSERT_EQ(UnlockPi(&w), 0);
  EXPECT_EQ(w.load(), 0u);
}

TEST(FutexPi, BadAddresses) {
  alignas(8) std::atomic<uint32_t> pair[2] = {0, 0};
  auto* odd = reinterpret_cast<std::atomic<uint32_t>*>(reinterpret_cast<char*>(&pair[0]) + 2);
  EXPECT_ERRNO(EINVAL, LockPi(odd));
  // futex_unlock_pi() reads the word and checks its owner before it looks
  // at the address: a misaligned word that is not ours is EPERM.
  EXPECT_ERRNO(EPERM, UnlockPi(odd));
  EXPECT_ERRNO(EINVAL, TrylockPi(odd));
  auto* bad = reinterpret_cast<std::atomic<uint32_t>*>(uintptr_t{8});
  EXPECT_ERRNO(EFAULT, LockPi(bad));
  EXPECT_ERRNO(EFAULT, UnlockPi(bad));
  EXPECT_ERRNO(EFAULT, TrylockPi(bad));
}

// The word names a thread that does not exist (and never took the lock):
// futex_lock_pi_atomic() sets FUTEX_WAITERS before it looks for the owner,
// and handle_exit_race() then gives up with ESRCH.
TEST(FutexPi, BogusOwnerIsEsrch) {
  pid_t gone = fork();
  ASSERT_GE(gone, 0);
  if (gone == 0) _exit(0);
  int status;
  ASSERT_EQ(waitpid(gone, &status, 0), gone);
  std::atomic<uint32_t> w{static_cast<uint32_t>(gone)};
  EXPECT_ERRNO(ESRCH, LockPi(&w));
  EXPECT_EQ(w.load(), static_cast<uint32_t>(gone) | FUTEX_WAITERS);
  w.store(static_cast<uint32_t>(gone));
  EXPECT_ERRNO(ESRCH, TrylockPi(&w));
  EXPECT_EQ(w.load(), static_cast<uint32_t>(gone) | FUTEX_WAITERS);
}

TEST(FutexPi, TrylockOfAHeldLockIsEagainAndMarksWaiters) {
  std::atomic<uint32_t> w{0};
  Holder h(&w);
  ASSERT_EQ(h.lock_result(), 0);
  EXPECT_ERRNO(EAGAIN, TrylockPi(&w));
  // As Linux: the failed attempt went through futex_lock_pi_atomic(), which
  // set the waiters bit, so the owner's unlock comes into the kernel.
  EXPECT_EQ(w.load(), h.tid() | FUTEX_WAITERS);
  h.Release();
  EXPECT_EQ(h.unlock_result(), 0);
  EXPECT_EQ(w.load(), 0u);
}

// Several threads contend for one lock through the kernel only: each sees
// the word name itself while it holds the lock, the handoff sets
// FUTEX_WAITERS, and the critical sections never overlap.
TEST(FutexPi, ContendedLockIsHandedOver) {
  std::atomic<uint32_t> w{0};
  ASSERT_EQ(LockPi(&w), 0);
  constexpr int kThreads = 4, kRounds = 50;
  std::atomic<int> inside{0}, bad{0}, started{0};
  int counter = 0;
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.emplace_back([&] {
      started.fetch_add(1);
      const uint32_t me = Tid();
      for (int r = 0; r < kRounds; ++r) {
        timespec dl = AbsIn(CLOCK_REALTIME, 20000);
        if (LockPi(&w, &dl) != 0) {
          bad.fetch_add(1);
          return;
        }
        if ((w.load() & FUTEX_TID_MASK) != me) bad.fetch_add(1);
        if (inside.fetch_add(1) != 0) bad.fetch_add(1);
        ++counter;
        inside.fetch_sub(1);
        // The fast path first, as glibc: only a word with FUTEX_WAITERS
        // goes to the kernel.
        uint32_t expect = me;
        if (!w.compare_exchange_strong(expect, 0) && UnlockPi(&w) != 0) bad.fetch_add(1);
      }
    });
  }
  while (started.load() < kThreads) usleep(1000);
  // Every thread finds the lock held and queues, which sets the bit.
  ASSERT_TRUE(Eventually([&] { return w.load() == (Tid() | FUTEX_WAITERS); }));
  usleep(50000);
  ASSERT_EQ(UnlockPi(&w), 0);
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(counter, kThreads * kRounds);
  EXPECT_EQ(w.load(), 0u);
}

TEST(FutexPi, HandoffGoesToAWaiterWithTheWaitersBit) {
  std::atomic<uint32_t> w{0};
  ASSERT_EQ(LockPi(&w), 0);
  LockWaiter waiter(&w);
  EXPECT_EQ(waiter.result(), -2);  // still waiting
  ASSERT_EQ(UnlockPi(&w), 0);
  waiter.Join();
  EXPECT_EQ(waiter.result(), 0);
  // wake_futex_pi(): the new owner's TID with FUTEX_WAITERS, even though it
  // was the last waiter; its own unlock then clears the word in the kernel.
  EXPECT_EQ(waiter.seen(), waiter.tid() | FUTEX_WAITERS);
  EXPECT_EQ(w.load(), 0u);
}

// A lock by `op` with a deadline 150 ms ahead on `clock` times out then.
void ExpectLockTimesOut(std::atomic<uint32_t>* w, clockid_t clock, int op) {
  int64_t t0 = NowMs();
  timespec dl = AbsIn(clock, 150);
  EXPECT_ERRNO(ETIMEDOUT, LockPi(w, &dl, op));
  EXPECT_GE(NowMs() - t0, 140);
}

TEST(FutexPi, LockPiTimesOutOnAbsoluteRealtime) {
  std::atomic<uint32_t> w{0};
  Holder h(&w);
  ExpectLockTimesOut(&w, CLOCK_REALTIME, FUTEX_LOCK_PI);
  EXPECT_EQ(w.load(), h.tid() | FUTEX_WAITERS);
  timespec dl = AbsIn(CLOCK_REALTIME, 150);
  // A deadline already past: no wait at all.
  timespec past{1, 0};
  EXPECT_ERRNO(ETIMEDOUT, LockPi(&w, &past));
  // FUTEX_LOCK_PI's clock is CLOCK_REALTIME only; asking for it is ENOSYS
  // (do_futex()).
  EXPECT_ERRNO(ENOSYS, LockPi(&w, &dl, FUTEX_LOCK_PI | FUTEX_CLOCK_REALTIME));
  timespec invalid{0, 1000000000};
  EXPECT_ERRNO(EINVAL, LockPi(&w, &invalid));
  h.Release();
  EXPECT_EQ(w.load(), 0u);
}

TEST(FutexPi, LockPi2TimesOutOnEitherClock) {
  std::atomic<uint32_t> w{0};
  Holder h(&w);
  ExpectLockTimesOut(&w, CLOCK_MONOTONIC, FUTEX_LOCK_PI2);
  ExpectLockTimesOut(&w, CLOCK_REALTIME, FUTEX_LOCK_PI2 | FUTEX_CLOCK_REALTIME);
  h.Release();
}

TEST(FutexPi, TrylockIgnoresTheTimeout) {
  std::atomic<uint32_t> w{0};
  Holder h(&w);
  timespec invalid{0, -1};
  EXPECT_ERRNO(EAGAIN, Futex(&w, FUTEX_TRYLOCK_PI, 0, &invalid));
  h.Release();
}

std::atomic<int> g_signals{0};
void CountSignal(int) { g_signals.fetch_add(1); }

// A signal runs its handler and FUTEX_LOCK_PI goes on waiting: it restarts
// (-ERESTARTNOINTR) whatever SA_RESTART says.
TEST(FutexPi, SignalRunsTheHandlerAndTheLockRestarts) {
  struct sigaction sa = {}, old;
  sa.sa_handler = CountSignal;  // no SA_RESTART
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
  g_signals.store(0);
  std::atomic<uint32_t> w{0};
  ASSERT_EQ(LockPi(&w), 0);
  std::atomic<long> result{-2};
  std::atomic<int> err{0};
  std::atomic<pid_t> waiter{0};
  std::thread t([&] {
    waiter.store(static_cast<pid_t>(Tid()));
    timespec dl = AbsIn(CLOCK_REALTIME, 20000);
    long r = LockPi(&w, &dl);
    err.store(errno);
    result.store(r);
    if (r == 0) UnlockPi(&w);
  });
  ASSERT_TRUE(Eventually([&] { return (w.load() & FUTEX_WAITERS) != 0; }));
  ASSERT_OK(syscall(SYS_tgkill, getpid(), waiter.load(), SIGUSR1));
  ASSERT_TRUE(Eventually([&] { return g_signals.load() == 1; }));
  usleep(50000);
  EXPECT_EQ(result.load(), -2) << "errno " << ErrnoName(err.load());
  ASSERT_EQ(UnlockPi(&w), 0);
  t.join();
  EXPECT_EQ(result.load(), 0) << "errno " << ErrnoName(err.load());
  sigaction(SIGUSR1, &old, nullptr);
}

// Once `owner` holds `w` (`locked`) a waiter queues; then the owner ends
// (`go`) and the waiter has the lock, the word naming it with
// FUTEX_WAITERS | FUTEX_OWNER_DIED.
void ExpectHandoffWhenOwnerEnds(std::atomic<uint32_t>* w, std::thread* owner,
                                std::atomic<bool>* locked, std::atomic<bool>* go) {
  while (!locked->load()) usleep(1000);
  LockWaiter waiter(w);
  go->store(true);
  owner->join();
  waiter.Join();
  EXPECT_EQ(waiter.result(), 0);
  EXPECT_EQ(waiter.seen(), waiter.tid() | FUTEX_WAITERS | FUTEX_OWNER_DIED);
  EXPECT_EQ(w->load(), 0u);
}

// The owner ends without unlocking (and without a robust list): its waiter
// gets the lock (exit_pi_state_list()), with its own TID in the word and
// FUTEX_OWNER_DIED, which fixup_pi_state_owner() sets when the lock it
// takes over had no owner left.
TEST(FutexPi, OwnerExitHandsTheLockToTheWaiter) {
  std::atomic<uint32_t> w{0};
  std::atomic<bool> locked{false}, go{false};
  std::thread owner([&] {
    syscall(SYS_set_robust_list, nullptr, 0);  // also drop glibc's list
    LockPi(&w);
    locked.store(true);
    while (!go.load()) usleep(1000);
    syscall(SYS_exit, 0);  // this thread only; glibc's join still works
  });
  ExpectHandoffWhenOwnerEnds(&w, &owner, &locked, &go);
}

struct RobustList {
  uint64_t next;
  int64_t futex_offset;
  uint64_t pending;
};

// A thread that takes `w` with FUTEX_LOCK_PI, lists it on its own robust
// list (entry | 1: a PI futex) and ends holding it.
void LockAndDieRobust(std::atomic<uint32_t>* w, std::atomic<bool>* locked,
                      std::atomic<bool>* go) {
  static thread_local RobustList head;
  static thread_local uint64_t entry;  // the robust list entry, before the word
  head.next = reinterpret_cast<uint64_t>(&entry) | 1;
  head.futex_offset = reinterpret_cast<char*>(w) - reinterpret_cast<char*>(&entry);
  head.pending = 0;
  entry = reinterpret_cast<uint64_t>(&head);
  syscall(SYS_set_robust_list, &head, sizeof(head));
  LockPi(w);
  locked->store(true);
  while (!go->load()) usleep(1000);
  syscall(SYS_exit, 0);
}

TEST(FutexPi, RobustOwnerExitSetsOwnerDiedForTheNextLocker) {
  std::atomic<uint32_t> w{0};
  std::atomic<bool> locked{false}, go{true};
  std::thread owner(LockAndDieRobust, &w, &locked, &go);
  owner.join();
  // handle_futex_death(): TID cleared, OWNER_DIED set, no waiters.
  EXPECT_EQ(w.load(), static_cast<uint32_t>(FUTEX_OWNER_DIED));
  // The word is not 0, so glibc's fast path fails; the kernel takes over a
  // word whose TID is 0 and keeps the owner-died bit.
  ASSERT_EQ(LockPi(&w), 0);
  EXPECT_EQ(w.load(), Tid() | FUTEX_OWNER_DIED);
  ASSERT_EQ(UnlockPi(&w), 0);
  EXPECT_EQ(w.load(), 0u);
  // TRYLOCK_PI takes it the same way (glibc's trylock of a robust PI mutex).
  w.store(FUTEX_OWNER_DIED);
  ASSERT_EQ(TrylockPi(&w), 0);
  EXPECT_EQ(w.load(), Tid() | FUTEX_OWNER_DIED);
  ASSERT_EQ(UnlockPi(&w), 0);
}

TEST(FutexPi, RobustOwnerExitHandsTheLockOverWithOwnerDied) {
  std::atomic<uint32_t> w{0};
  std::atomic<bool> locked{false}, go{false};
  std::thread owner(LockAndDieRobust, &w, &locked, &go);
  ExpectHandoffWhenOwnerEnds(&w, &owner, &locked, &go);
}

// The word names a live thread but the kernel's waiters wait for another
// owner: user space changed the word behind the kernel's back (EINVAL,
// attach_to_pi_state()).
TEST(FutexPi, WordThatContradictsTheWaitersIsEinval) {
  std::atomic<uint32_t> w{0};
  Holder h(&w);
  std::atomic<long> result{-2};
  std::thread waiter([&] {
    timespec dl = AbsIn(CLOCK_REALTIME, 20000);
    result.store(LockPi(&w, &dl));
    if (result.load() == 0) UnlockPi(&w);
  });
  ASSERT_TRUE(Eventually([&] { return (w.load() & FUTEX_WAITERS) != 0; }));
  usleep(20000);
  // Another live thread's TID with the waiters bit.
  std::atomic<uint32_t> w2{0};
  Holder other(&w2);
  w.store(other.tid() | FUTEX_WAITERS);
  EXPECT_ERRNO(EINVAL, TrylockPi(&w));
  w.store(h.tid() | FUTEX_WAITERS);
  h.Release();
  waiter.join();
  EXPECT_EQ(result.load(), 0);
}

// ---- FUTEX_WAIT_REQUEUE_PI / FUTEX_CMP_REQUEUE_PI ----
// A condition variable's word `c` and a PI mutex `m`: waiters sleep on `c`
// and are moved to `m` (futex_requeue() with requeue_pi), taking it if it
// is free.

long WaitRequeuePi(std::atomic<uint32_t>* c, uint32_t val, const timespec* ts,
                   std::atomic<uint32_t>* m, int flags = 0) {
  return Futex(c, FUTEX_WAIT_REQUEUE_PI | flags, val, ts, m);
}
// FUTEX_CMP_REQUEUE_PI: nr_wake 1, `nr_requeue` in the timeout slot.
long CmpRequeuePi(std::atomic<uint32_t>* c, int nr_wake, int nr_requeue,
                  std::atomic<uint32_t>* m, uint32_t cmpval) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(c), FUTEX_CMP_REQUEUE_PI, nr_wake,
                 reinterpret_cast<void*>(static_cast<intptr_t>(nr_requeue)),
                 reinterpret_cast<uint32_t*>(m), cmpval);
}

// A thread in FUTEX_WAIT_REQUEUE_PI(c, 0, m) that, once it returns 0 (and
// so holds m), records the word and unlocks m.
class RequeueWaiter {
 public:
  RequeueWaiter(std::atomic<uint32_t>* c, std::atomic<uint32_t>* m) {
    t_ = std::thread([this, c, m] {
      tid_.store(Tid());
      timespec dl = AbsIn(CLOCK_MONOTONIC, 20000);
      long r = WaitRequeuePi(c, 0, &dl, m);
      err_.store(r == 0 ? 0 : errno);
      if (r == 0) {
        seen_.store(m->load());
        UnlockPi(m);
      }
      result_.store(r);
    });
    while (tid_.load() == 0) usleep(1000);
  }
  ~RequeueWaiter() { Join(); }
  void Join() {
    if (t_.joinable()) t_.join();
  }
  uint32_t tid() const { return tid_.load(); }
  long result() const { return result_.load(); }
  int err() const { return err_.load(); }
  uint32_t seen() const { return seen_.load(); }

 private:
  std::thread t_;
  std::atomic<uint32_t> tid_{0}, seen_{0};
  std::atomic<long> result_{-2};
  std::atomic<int> err_{0};
};

TEST(FutexRequeuePi, ArgumentChecks) {
  std::atomic<uint32_t> c{0}, m{0};
  EXPECT_ERRNO(EINVAL, WaitRequeuePi(&c, 0, nullptr, &c));
  EXPECT_ERRNO(EAGAIN, WaitRequeuePi(&c, 1, nullptr, &m));
  EXPECT_ERRNO(EINVAL, CmpRequeuePi(&c, 2, 1, &m, 0));  // nr_wake must be 1
  EXPECT_ERRNO(EINVAL, CmpRequeuePi(&c, 0, 1, &m, 0));
  EXPECT_ERRNO(EINVAL, CmpRequeuePi(&c, 1, -1, &m, 0));
  EXPECT_ERRNO(EINVAL, CmpRequeuePi(&c, 1, 1, &c, 0));
  EXPECT_ERRNO(EAGAIN, CmpRequeuePi(&c, 1, 1, &m, 5));
  EXPECT_ERRNO(ENOSYS, syscall(SYS_futex, &c, FUTEX_CMP_REQUEUE_PI | FUTEX_CLOCK_REALTIME, 1,
                               reinterpret_cast<void*>(1), &m, 0));
  EXPECT_EQ(CmpRequeuePi(&c, 1, 1, &m, 0), 0);  // nobody waits
  EXPECT_EQ(m.load(), 0u);
  int64_t t0 = NowMs();
  timespec dl = AbsIn(CLOCK_MONOTONIC, 100);
  EXPECT_ERRNO(ETIMEDOUT, WaitRequeuePi(&c, 0, &dl, &m));
  EXPECT_GE(NowMs() - t0, 90);
  dl = AbsIn(CLOCK_REALTIME, 100);
  EXPECT_ERRNO(ETIMEDOUT, WaitRequeuePi(&c, 0, &dl, &m, FUTEX_CLOCK_REALTIME));
}

// The mutex is free: the first waiter takes it in the requeue and wakes
// holding it; nobody else is moved, so no FUTEX_WAITERS.
TEST(FutexRequeuePi, FreeMutexGoesToTheFirstWaiter) {
  std::atomic<uint32_t> c{0}, m{0};
  RequeueWaiter w(&c, &m);
  usleep(100000);
  // FUTEX_WAKE may not wake a requeue-PI waiter (futex_wake()).
  EXPECT_ERRNO(EINVAL, Futex(&c, FUTEX_WAKE, 1, nullptr));
  c.store(1);
  EXPECT_EQ(CmpRequeuePi(&c, 1, 0, &m, 1), 1);
  w.Join();
  EXPECT_EQ(w.result(), 0) << ErrnoName(w.err());
  EXPECT_EQ(w.seen(), w.tid());
  EXPECT_EQ(m.load(), 0u);
}

// The mutex is held: every waiter is moved to it (nr_requeue counts all
// but one), the word gets FUTEX_WAITERS, and each unlock hands it on.
TEST(FutexRequeuePi, HeldMutexQueuesTheWaiters) {
  std::atomic<uint32_t> c{0}, m{0};
  ASSERT_EQ(LockPi(&m), 0);
  RequeueWaiter w1(&c, &m);
  usleep(50000);
  RequeueWaiter w2(&c, &m);
  RequeueWaiter w3(&c, &m);
  usleep(100000);
  c.store(1);
  // Two moved (nr_requeue 1, plus the first one, which could not take it).
  EXPECT_EQ(CmpRequeuePi(&c, 1, 1, &m, 1), 2);
  EXPECT_EQ(m.load(), Tid() | FUTEX_WAITERS);
  EXPECT_EQ(CmpRequeuePi(&c, 1, 5, &m, 1), 1);
  usleep(50000);
  EXPECT_EQ(w1.result(), -2);
  ASSERT_EQ(UnlockPi(&m), 0);
  w1.Join();
  w2.Join();
  w3.Join();
  EXPECT_EQ(w1.result(), 0) << ErrnoName(w1.err());
  EXPECT_EQ(w2.result(), 0) << ErrnoName(w2.err());
  EXPECT_EQ(w3.result(), 0) << ErrnoName(w3.err());
  EXPECT_EQ(w1.seen(), w1.tid() | FUTEX_WAITERS);  // the first in line
  EXPECT_EQ(m.load(), 0u);
}

// Free mutex and more waiters to move: the first takes it with
// FUTEX_WAITERS set (the others wait on it).
TEST(FutexRequeuePi, FreeMutexWithMoreWaitersSetsTheWaitersBit) {
  std::atomic<uint32_t> c{0}, m{0};
  RequeueWaiter w1(&c, &m);
  usleep(50000);
  RequeueWaiter w2(&c, &m);
  usleep(100000);
  c.store(1);
  EXPECT_EQ(CmpRequeuePi(&c, 1, 1, &m, 1), 2);
  w1.Join();
  w2.Join();
  EXPECT_EQ(w1.result(), 0) << ErrnoName(w1.err());
  EXPECT_EQ(w2.result(), 0) << ErrnoName(w2.err());
  EXPECT_EQ(w1.seen(), w1.tid() | FUTEX_WAITERS);
  EXPECT_EQ(w2.seen(), w2.tid() | FUTEX_WAITERS);
  EXPECT_EQ(m.load(), 0u);
}

// A waiter that times out after it was moved leaves the mutex's queue.
TEST(FutexRequeuePi, TimeoutAfterTheMove) {
  std::atomic<uint32_t> c{0}, m{0};
  ASSERT_EQ(LockPi(&m), 0);
  std::atomic<long> r{-2};
  std::atomic<int> err{0};
  std::thread t([&] {
    timespec dl = AbsIn(CLOCK_MONOTONIC, 300);
    long x = WaitRequeuePi(&c, 0, &dl, &m);
    err.store(errno);
    r.store(x);
  });
  usleep(100000);
  EXPECT_EQ(CmpRequeuePi(&c, 1, 0, &m, 0), 1);
  t.join();
  EXPECT_EQ(r.load(), -1);
  EXPECT_EQ(err.load(), ETIMEDOUT);
  EXPECT_EQ(m.load(), Tid() | FUTEX_WAITERS);
  ASSERT_EQ(UnlockPi(&m), 0);
  EXPECT_EQ(m.load(), 0u);
}

// Plain FUTEX_WAITs on the word are not for a PI requeue.
TEST(FutexRequeuePi, PlainWaiterIsEinval) {
  std::atomic<uint32_t> c{0}, m{0};
  std::atomic<long> r{-2};
  std::thread t([&] {
    timespec rel{2, 0};
    r.store(Futex(&c, FUTEX_WAIT, 0, &rel));
  });
  usleep(100000);
  EXPECT_ERRNO(EINVAL, CmpRequeuePi(&c, 1, 1, &m, 0));
  EXPECT_EQ(m.load(), 0u);
  EXPECT_EQ(Futex(&c, FUTEX_WAKE, 1, nullptr), 1);
  t.join();
  EXPECT_EQ(r.load(), 0);
}

// ---- glibc's PTHREAD_PRIO_INHERIT mutexes ----

class PiMutex {
 public:
  explicit PiMutex(bool robust = false, int type = PTHREAD_MUTEX_NORMAL) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
    pthread_mutexattr_settype(&a, type);
    if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&m_, &a);
    pthread_mutexattr_destroy(&a);
  }
  ~PiMutex() { pthread_mutex_destroy(&m_); }
  pthread_mutex_t* get() { return &m_; }
  uint32_t word() const { return static_cast<uint32_t>(m_.__data.__lock); }

 private:
  pthread_mutex_t m_;
};

TEST(FutexPi, PthreadPrioInheritMutexExcludes) {
  PiMutex m;
  constexpr int kThreads = 4, kRounds = 2000;
  long counter = 0;
  std::atomic<int> inside{0}, overlaps{0}, errors{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        if (pthread_mutex_lock(m.get()) != 0) {
          errors.fetch_add(1);
          continue;
        }
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        ++counter;
        if (r % 64 == 0) sched_yield();  // let the others pile up
        inside.fetch_sub(1);
        if (pthread_mutex_unlock(m.get()) != 0) errors.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(counter, kThreads * kRounds);
  EXPECT_EQ(m.word(), 0u);
}

TEST(FutexPi, PthreadPrioInheritTimedlockAndErrorcheck) {
  PiMutex m(false, PTHREAD_MUTEX_ERRORCHECK);
  ASSERT_EQ(pthread_mutex_lock(m.get()), 0);
  EXPECT_EQ(m.word(), Tid());
  EXPECT_EQ(pthread_mutex_lock(m.get()), EDEADLK);
  int timed = -1, tried = -1;
  std::thread t([&] {
    tried = pthread_mutex_trylock(m.get());
    timespec dl = AbsIn(CLOCK_REALTIME, 100);
    timed = pthread_mutex_timedlock(m.get(), &dl);
  });
  t.join();
  EXPECT_EQ(tried, EBUSY);
  EXPECT_EQ(timed, ETIMEDOUT);
  EXPECT_EQ(pthread_mutex_unlock(m.get()), 0);
  EXPECT_EQ(pthread_mutex_unlock(m.get()), EPERM);
}

TEST(FutexPi, RobustPrioInheritMutexReportsOwnerDead) {
  PiMutex m(/*robust=*/true);
  std::atomic<bool> locked{false};
  std::thread owner([&] {
    pthread_mutex_lock(m.get());
    locked.store(true);
    // Ends holding it: glibc's robust list names the mutex.
    syscall(SYS_exit, 0);
  });
  while (!locked.load()) usleep(1000);
  int r = -1, r2 = -1;
  std::thread waiter([&] {
    r = pthread_mutex_lock(m.get());
    if (r == EOWNERDEAD) pthread_mutex_consistent(m.get());
    r2 = pthread_mutex_unlock(m.get());
  });
  owner.join();
  waiter.join();
  EXPECT_EQ(r, EOWNERDEAD);
  EXPECT_EQ(r2, 0);
  EXPECT_EQ(pthread_mutex_lock(m.get()), 0);
  EXPECT_EQ(pthread_mutex_unlock(m.get()), 0);
}

}  // namespace
}  // namespace syscall_test
