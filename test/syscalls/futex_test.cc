// futex(2) operations between threads (WAIT/WAKE, timeouts on both clocks,
// BITSET, REQUEUE, CMP_REQUEUE, WAKE_OP; each op also with
// FUTEX_PRIVATE_FLAG), plus the thread features built on them:
// pthread_cancel (deferred and asynchronous) and thread-directed signals.
//
// Waiters are threads blocked in FUTEX_WAIT with a long timeout, so a
// missing wake fails the test instead of hanging it. "Blocked" is inferred
// from a generous sleep after every waiter announced itself.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

long Futex(uint32_t* uaddr, int op, uint32_t val, const timespec* ts,
           uint32_t* uaddr2 = nullptr, uint32_t val3 = 0) {
  return syscall(SYS_futex, uaddr, op, val, ts, uaddr2, val3);
}

// REQUEUE, CMP_REQUEUE and WAKE_OP take a count (val2) in the timeout slot.
long FutexVal2(uint32_t* uaddr, int op, uint32_t val, uint32_t val2,
               uint32_t* uaddr2, uint32_t val3) {
  return syscall(SYS_futex, uaddr, op, val,
                 reinterpret_cast<void*>(static_cast<uintptr_t>(val2)), uaddr2,
                 val3);
}

int64_t NowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

timespec NsToTimespec(int64_t ns) {
  return timespec{static_cast<time_t>(ns / 1000000000LL),
                  static_cast<long>(ns % 1000000000LL)};
}

constexpr int64_t kMs = 1000000;

// Threads each blocked in one FUTEX_WAIT(_BITSET) on a word that holds
// `expected`; woken() counts the waits that returned 0.
//
//   Waiters w;
//   w.Start(&word, 0, FUTEX_WAIT, 3);
//   EXPECT_EQ(Futex(&word, FUTEX_WAKE, 2, nullptr), 2);
//   w.JoinAll();
class Waiters {
 public:
  ~Waiters() { JoinAll(); }

  void Start(uint32_t* word, uint32_t expected, int op, int n,
             uint32_t bitset = FUTEX_BITSET_MATCH_ANY) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([=, this] {
        ready_.fetch_add(1);
        long r;
        if ((op & FUTEX_CMD_MASK) == FUTEX_WAIT_BITSET) {
          // Absolute deadline on CLOCK_MONOTONIC.
          timespec dl = NsToTimespec(NowNs(CLOCK_MONOTONIC) + 10000 * kMs);
          r = Futex(word, op, expected, &dl, nullptr, bitset);
        } else {
          timespec rel{10, 0};
          r = Futex(word, op, expected, &rel);
        }
        if (r == 0) woken_.fetch_add(1);
      });
    }
    while (ready_.load() < static_cast<int>(threads_.size())) usleep(1000);
    usleep(200000);  // Let each one reach the futex and block.
  }

  int woken() const { return woken_.load(); }

  // Waits up to 2 s for woken() to reach n; returns woken().
  int WaitWoken(int n) {
    for (int i = 0; i < 400 && woken() < n; ++i) usleep(5000);
    return woken();
  }

  void JoinAll() {
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::thread> threads_;
  std::atomic<int> ready_{0};
  std::atomic<int> woken_{0};
};

// Every futex op test runs with and without FUTEX_PRIVATE_FLAG.
class FutexTest : public ::testing::TestWithParam<int> {
 protected:
  int Op(int cmd) const { return cmd | GetParam(); }
};

TEST_P(FutexTest, WaitValueMismatchIsEagain) {
  uint32_t word = 1;
  timespec ts{1, 0};
  EXPECT_ERRNO(EAGAIN, Futex(&word, Op(FUTEX_WAIT), 0, &ts));
}

TEST_P(FutexTest, WaitRelativeTimeout) {
  uint32_t word = 0;
  timespec ts = NsToTimespec(50 * kMs);
  int64_t start = NowNs(CLOCK_MONOTONIC);
  EXPECT_ERRNO(ETIMEDOUT, Futex(&word, Op(FUTEX_WAIT), 0, &ts));
  int64_t took = NowNs(CLOCK_MONOTONIC) - start;
  EXPECT_GE(took, 45 * kMs);
  EXPECT_LT(took, 2000 * kMs);
}

TEST_P(FutexTest, WaitBitsetAbsoluteTimeoutMonotonic) {
  uint32_t word = 0;
  int64_t start = NowNs(CLOCK_MONOTONIC);
  timespec dl = NsToTimespec(start + 50 * kMs);
  EXPECT_ERRNO(ETIMEDOUT, Futex(&word, Op(FUTEX_WAIT_BITSET), 0, &dl, nullptr,
                                FUTEX_BITSET_MATCH_ANY));
  int64_t took = NowNs(CLOCK_MONOTONIC) - start;
  EXPECT_GE(took, 45 * kMs);
  EXPECT_LT(took, 2000 * kMs);
}

TEST_P(FutexTest, WaitBitsetAbsoluteTimeoutRealtime) {
  uint32_t word = 0;
  int64_t start = NowNs(CLOCK_MONOTONIC);
  timespec dl = NsToTimespec(NowNs(CLOCK_REALTIME) + 50 * kMs);
  EXPECT_ERRNO(ETIMEDOUT,
               Futex(&word, Op(FUTEX_WAIT_BITSET) | FUTEX_CLOCK_REALTIME, 0,
                     &dl, nullptr, FUTEX_BITSET_MATCH_ANY));
  int64_t took = NowNs(CLOCK_MONOTONIC) - start;
  EXPECT_GE(took, 45 * kMs);
  EXPECT_LT(took, 2000 * kMs);
}

TEST_P(FutexTest, WakeWakesExactlyN) {
  uint32_t word = 0;
  Waiters w;
  w.Start(&word, 0, Op(FUTEX_WAIT), 3);
  EXPECT_EQ(Futex(&word, Op(FUTEX_WAKE), 2, nullptr), 2);
  EXPECT_EQ(w.WaitWoken(2), 2);
  usleep(100000);
  EXPECT_EQ(w.woken(), 2);  // The third one still sleeps.
  EXPECT_EQ(Futex(&word, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(w.WaitWoken(3), 3);
}

// futex_wake() (kernel/futex/waitwake.c) counts up and stops at
// `++ret >= nr_wake`: a count of 0 (or a negative one) wakes one waiter.
TEST_P(FutexTest, WakeCountZeroWakesOne) {
  uint32_t word = 0;
  Waiters w;
  w.Start(&word, 0, Op(FUTEX_WAIT), 3);
  EXPECT_EQ(Futex(&word, Op(FUTEX_WAKE), 0, nullptr), 1);
  EXPECT_EQ(w.WaitWoken(1), 1);
  EXPECT_EQ(Futex(&word, Op(FUTEX_WAKE), static_cast<uint32_t>(-1), nullptr), 1);
  EXPECT_EQ(w.WaitWoken(2), 2);
  usleep(100000);
  EXPECT_EQ(w.woken(), 2);
  EXPECT_EQ(Futex(&word, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(w.WaitWoken(3), 3);
}

// FUTEX_WAKE_OP stops the same way on both words.
TEST_P(FutexTest, WakeOpCountZeroWakesOne) {
  uint32_t f1 = 0, f2 = 0;
  Waiters w1, w2;
  w1.Start(&f1, 0, Op(FUTEX_WAIT), 2);
  w2.Start(&f2, 0, Op(FUTEX_WAIT), 2);
  EXPECT_EQ(FutexVal2(&f1, Op(FUTEX_WAKE_OP), 0, 0, &f2,
                      FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)),
            2);
  EXPECT_EQ(w1.WaitWoken(1), 1);
  EXPECT_EQ(w2.WaitWoken(1), 1);
  usleep(100000);
  EXPECT_EQ(w1.woken() + w2.woken(), 2);
  EXPECT_EQ(Futex(&f1, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(Futex(&f2, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(w1.WaitWoken(2), 2);
  EXPECT_EQ(w2.WaitWoken(2), 2);
}

// A private and a shared futex on the same word are different futexes:
// get_futex_key() marks a shared key on private memory FUT_OFF_MMSHARED, so
// it never matches the private key of the same (mm, address).
TEST_P(FutexTest, WakeOfTheOtherKindWakesNobody) {
  const int other = GetParam() ^ FUTEX_PRIVATE_FLAG;
  uint32_t word = 0;
  Waiters w;
  w.Start(&word, 0, Op(FUTEX_WAIT), 1);
  EXPECT_EQ(Futex(&word, FUTEX_WAKE | other, INT_MAX, nullptr), 0);
  EXPECT_EQ(FutexVal2(&word, FUTEX_WAKE_OP | other, INT_MAX, 0, &word,
                      FUTEX_OP(FUTEX_OP_ADD, 0, FUTEX_OP_CMP_EQ, 1)),
            0);
  usleep(100000);
  EXPECT_EQ(w.woken(), 0);
  EXPECT_EQ(Futex(&word, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(w.WaitWoken(1), 1);
}

TEST_P(FutexTest, WakeBitsetWakesOnlyMatchingWaiters) {
  uint32_t word = 0;
  Waiters a, b;
  a.Start(&word, 0, Op(FUTEX_WAIT_BITSET), 1, 0x1);
  b.Start(&word, 0, Op(FUTEX_WAIT_BITSET), 1, 0x2);
  EXPECT_EQ(Futex(&word, Op(FUTEX_WAKE_BITSET), INT_MAX, nullptr, nullptr, 0x6),
            1);
  EXPECT_EQ(b.WaitWoken(1), 1);
  EXPECT_EQ(a.woken(), 0);
  EXPECT_EQ(Futex(&word, Op(FUTEX_WAKE_BITSET), INT_MAX, nullptr, nullptr, 0x1),
            1);
  EXPECT_EQ(a.WaitWoken(1), 1);
}

TEST_P(FutexTest, ZeroBitsetIsEinval) {
  uint32_t word = 0;
  timespec dl = NsToTimespec(NowNs(CLOCK_MONOTONIC) + 1000 * kMs);
  EXPECT_ERRNO(EINVAL, Futex(&word, Op(FUTEX_WAIT_BITSET), 0, &dl, nullptr, 0));
  EXPECT_ERRNO(EINVAL,
               Futex(&word, Op(FUTEX_WAKE_BITSET), 1, nullptr, nullptr, 0));
}

TEST_P(FutexTest, RequeueMovesWaiters) {
  uint32_t f1 = 0, f2 = 0;
  Waiters w;
  w.Start(&f1, 0, Op(FUTEX_WAIT), 3);
  // Wake 1, move 1 to f2, leave 1 on f1.
  // futex(2) says "the number of waiters woken"; Linux (futex_requeue())
  // returns woken + requeued, as for FUTEX_CMP_REQUEUE.
  EXPECT_EQ(FutexVal2(&f1, Op(FUTEX_REQUEUE), 1, 1, &f2, 0), 2);
  EXPECT_EQ(w.WaitWoken(1), 1);
  usleep(100000);
  EXPECT_EQ(w.woken(), 1);
  EXPECT_EQ(Futex(&f2, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(w.WaitWoken(2), 2);
  EXPECT_EQ(Futex(&f1, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(w.WaitWoken(3), 3);
}

TEST_P(FutexTest, CmpRequeue) {
  uint32_t f1 = 0, f2 = 0;
  Waiters w;
  w.Start(&f1, 0, Op(FUTEX_WAIT), 3);
  // The word holds 0, not 7: nothing happens.
  EXPECT_ERRNO(EAGAIN, FutexVal2(&f1, Op(FUTEX_CMP_REQUEUE), 1, 1, &f2, 7));
  usleep(50000);
  EXPECT_EQ(w.woken(), 0);
  // futex(2): returns the number of waiters woken or requeued.
  EXPECT_EQ(FutexVal2(&f1, Op(FUTEX_CMP_REQUEUE), 1, 1, &f2, 0), 2);
  EXPECT_EQ(w.WaitWoken(1), 1);
  usleep(100000);
  EXPECT_EQ(w.woken(), 1);
  EXPECT_EQ(Futex(&f2, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(w.WaitWoken(2), 2);
  EXPECT_EQ(Futex(&f1, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(w.WaitWoken(3), 3);
}

// FUTEX_OP(ADD, 1, CMP_EQ, 0): *f2 += 1; also wake on f2 if the old value
// was 0.
TEST_P(FutexTest, WakeOpConditionTrueWakesBoth) {
  uint32_t f1 = 0, f2 = 0;
  Waiters w1, w2;
  w1.Start(&f1, 0, Op(FUTEX_WAIT), 1);
  w2.Start(&f2, 0, Op(FUTEX_WAIT), 1);
  EXPECT_EQ(FutexVal2(&f1, Op(FUTEX_WAKE_OP), 1, 1, &f2,
                      FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)),
            2);
  EXPECT_EQ(__atomic_load_n(&f2, __ATOMIC_SEQ_CST), 1u);
  EXPECT_EQ(w1.WaitWoken(1), 1);
  EXPECT_EQ(w2.WaitWoken(1), 1);
}

TEST_P(FutexTest, WakeOpConditionFalseWakesOnlyFirst) {
  uint32_t f1 = 0, f2 = 5;
  Waiters w1, w2;
  w1.Start(&f1, 0, Op(FUTEX_WAIT), 1);
  w2.Start(&f2, 5, Op(FUTEX_WAIT), 1);
  EXPECT_EQ(FutexVal2(&f1, Op(FUTEX_WAKE_OP), 1, 1, &f2,
                      FUTEX_OP(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)),
            1);
  EXPECT_EQ(__atomic_load_n(&f2, __ATOMIC_SEQ_CST), 6u);
  EXPECT_EQ(w1.WaitWoken(1), 1);
  usleep(100000);
  EXPECT_EQ(w2.woken(), 0);
  EXPECT_EQ(Futex(&f2, Op(FUTEX_WAKE), INT_MAX, nullptr), 1);
  EXPECT_EQ(w2.WaitWoken(1), 1);
}

INSTANTIATE_TEST_SUITE_P(SharedAndPrivate, FutexTest,
                         ::testing::Values(0, FUTEX_PRIVATE_FLAG),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param ? "Private" : "Shared";
                         });

// ---- Thread features built on futexes ----

std::atomic<int> g_cleanup_ran{0};
void MarkCleanup(void*) { g_cleanup_ran.fetch_add(1); }

void* BlockInRead(void* arg) {
  int fd = *static_cast<int*>(arg);
  pthread_cleanup_push(MarkCleanup, nullptr);
  char c;
  while (true) read(fd, &c, 1);  // A cancellation point.
  pthread_cleanup_pop(0);
  return nullptr;
}

TEST(ThreadTest, DeferredCancelOfThreadBlockedInRead) {
  int fds[2];
  ASSERT_OK(pipe(fds));
  g_cleanup_ran = 0;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, BlockInRead, &fds[0]), 0);
  usleep(100000);
  ASSERT_EQ(pthread_cancel(t), 0);
  void* ret = nullptr;
  ASSERT_EQ(pthread_join(t, &ret), 0);
  EXPECT_EQ(ret, PTHREAD_CANCELED);
  EXPECT_EQ(g_cleanup_ran.load(), 1);
  close(fds[0]);
  close(fds[1]);
}

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;

void UnlockMu(void*) {
  g_cleanup_ran.fetch_add(1);
  pthread_mutex_unlock(&g_mu);
}

void* BlockInCondWait(void*) {
  pthread_mutex_lock(&g_mu);
  pthread_cleanup_push(UnlockMu, nullptr);
  while (true) pthread_cond_wait(&g_cv, &g_mu);
  pthread_cleanup_pop(0);
  return nullptr;
}

TEST(ThreadTest, DeferredCancelOfThreadInCondWait) {
  g_cleanup_ran = 0;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, BlockInCondWait, nullptr), 0);
  usleep(100000);
  ASSERT_EQ(pthread_cancel(t), 0);
  void* ret = nullptr;
  ASSERT_EQ(pthread_join(t, &ret), 0);
  EXPECT_EQ(ret, PTHREAD_CANCELED);
  EXPECT_EQ(g_cleanup_ran.load(), 1);
  // The cleanup handler released the mutex that cond_wait reacquired.
  EXPECT_EQ(pthread_mutex_trylock(&g_mu), 0);
  pthread_mutex_unlock(&g_mu);
}

std::atomic<int> g_spinning{0};

void* BusyLoop(void*) {
  pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, nullptr);
  volatile uint64_t n = 0;
  g_spinning = 1;
  while (true) n = n + 1;  // No cancellation point in here.
  return nullptr;
}

TEST(ThreadTest, AsynchronousCancelOfBusyThread) {
  g_spinning = 0;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, BusyLoop, nullptr), 0);
  while (!g_spinning) usleep(1000);
  ASSERT_EQ(pthread_cancel(t), 0);
  void* ret = nullptr;
  ASSERT_EQ(pthread_join(t, &ret), 0);
  EXPECT_EQ(ret, PTHREAD_CANCELED);
}

std::atomic<pid_t> g_handler_tid{0};
void RecordTid(int) { g_handler_tid = static_cast<pid_t>(syscall(SYS_gettid)); }

// A thread that reports its tid and waits (≤ 10 s) for the handler to run.
struct SignalTarget {
  std::atomic<pid_t> tid{0};
  std::thread thread{[this] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    for (int i = 0; i < 2000 && g_handler_tid == 0; ++i) usleep(5000);
  }};
  pid_t WaitTid() {
    while (tid == 0) usleep(1000);
    return tid;
  }
};

class ThreadSignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_handler_tid = 0;
    struct sigaction sa = {};
    sa.sa_handler = RecordTid;
    ASSERT_OK(sigaction(SIGUSR1, &sa, &old_));
  }
  void TearDown() override { sigaction(SIGUSR1, &old_, nullptr); }
  struct sigaction old_;
};

TEST_F(ThreadSignalTest, PthreadKillIsHandledByTargetThread) {
  SignalTarget target;
  pid_t tid = target.WaitTid();
  ASSERT_EQ(pthread_kill(target.thread.native_handle(), SIGUSR1), 0);
  target.thread.join();
  EXPECT_EQ(g_handler_tid.load(), tid);
  EXPECT_NE(tid, static_cast<pid_t>(syscall(SYS_gettid)));
}

TEST_F(ThreadSignalTest, TgkillIsHandledByTargetThread) {
  SignalTarget target;
  pid_t tid = target.WaitTid();
  ASSERT_OK(syscall(SYS_tgkill, getpid(), tid, SIGUSR1));
  target.thread.join();
  EXPECT_EQ(g_handler_tid.load(), tid);
}

// A shared futex is keyed by its page (get_futex_key()): a word that is
// unmapped, PROT_NONE or past the end of its file is EFAULT for a wake or
// requeue; a private one is keyed by its address only.
TEST(FutexKeys, SharedWordMustBeReachable) {
  const size_t page = getpagesize();
  void* unmapped = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(unmapped, MAP_FAILED);
  ASSERT_OK(munmap(unmapped, page));
  void* none = mmap(nullptr, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(none, MAP_FAILED);
  TempDir dir;
  FileDescriptor fd(open(dir.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_OK(fd.get());
  ASSERT_OK(ftruncate(fd.get(), page));
  void* truncated = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(truncated, MAP_FAILED);
  ASSERT_OK(ftruncate(fd.get(), 0));
  uint32_t word = 0;
  for (void* p : {unmapped, none, truncated}) {
    uint32_t* w = static_cast<uint32_t*>(p);
    EXPECT_ERRNO(EFAULT, Futex(w, FUTEX_WAKE, 1, nullptr));
    EXPECT_ERRNO(EFAULT, syscall(SYS_futex, w, FUTEX_WAKE_BITSET, 1, nullptr, nullptr,
                                 FUTEX_BITSET_MATCH_ANY));
    EXPECT_ERRNO(EFAULT, FutexVal2(w, FUTEX_REQUEUE, 1, 1, &word, 0));
    EXPECT_ERRNO(EFAULT, FutexVal2(&word, FUTEX_REQUEUE, 1, 1, w, 0));
    EXPECT_ERRNO(EFAULT, FutexVal2(&word, FUTEX_CMP_REQUEUE, 1, 1, w, 0));
  }
  // Private: keyed by address, nothing to fault on (none to wake either).
  uint32_t* w = static_cast<uint32_t*>(unmapped);
  EXPECT_EQ(Futex(w, FUTEX_WAKE_PRIVATE, 1, nullptr), 0);
  EXPECT_EQ(FutexVal2(&word, FUTEX_CMP_REQUEUE_PRIVATE, 1, 1, w, 0), 0);
  munmap(none, page);
  munmap(truncated, page);
}

// futex_requeue(): a negative wake or requeue count is EINVAL, before the
// value is compared (CVE-2018-6927).
TEST(FutexKeys, RequeueCountsMustNotBeNegative) {
  uint32_t a = 0, b = 0;
  for (int op : {FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_CMP_REQUEUE_PRIVATE}) {
    SCOPED_TRACE(op);
    EXPECT_ERRNO(EINVAL, FutexVal2(&a, op, 1, static_cast<uint32_t>(-1), &b, 0));
    EXPECT_ERRNO(EINVAL, FutexVal2(&a, op, static_cast<uint32_t>(-1), 1, &b, 0));
  }
  EXPECT_ERRNO(EINVAL, FutexVal2(&a, FUTEX_CMP_REQUEUE, 1, static_cast<uint32_t>(-1), &b, 1));
  EXPECT_EQ(FutexVal2(&a, FUTEX_CMP_REQUEUE, 1, 1, &b, 0), 0);
}

}  // namespace
}  // namespace syscall_test
