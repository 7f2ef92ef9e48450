// futex_waitv(2) (Linux 5.16): its checks in the order of sys_futex_waitv()
// and futex_wait_multiple_setup(), wakes of any of up to 128 words
// (private and shared keys apart, requeued entries, shared words across
// processes), timeouts on both clocks, and signals.
//
// A waiter is known to be asleep once a FUTEX_CMP_REQUEUE of its word onto
// itself counts it: that moves nothing (futex_requeue() on one key) and
// reports the queued waiters, so no case relies on a nap.
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

// struct futex_waitv and its flags (include/uapi/linux/futex.h).
struct Waitv {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};
constexpr uint32_t kU32 = 2;                         // FUTEX2_SIZE_U32
constexpr uint32_t kPriv = FUTEX_PRIVATE_FLAG;       // FUTEX2_PRIVATE
constexpr uint32_t kU32Priv = kU32 | kPriv;

long FutexWaitv(Waitv* w, unsigned n, unsigned flags, const timespec* to, clockid_t clock) {
  return syscall(SYS_futex_waitv, w, n, flags, to, clock);
}

Waitv Entry(uint32_t* word, uint64_t val, uint32_t flags = kU32Priv) {
  return Waitv{val, reinterpret_cast<uintptr_t>(word), flags, 0};
}

timespec In(clockid_t clock, int64_t ms) {
  timespec ts;
  clock_gettime(clock, &ts);
  int64_t ns = ts.tv_nsec + ms * 1000000;
  ts.tv_sec += ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  return ts;
}

// FUTEX_CMP_REQUEUE of `word` onto itself: how many wait on it (-1 if its
// value changed). `priv`: the private key, else the shared one.
long Queued(uint32_t* word, bool priv) {
  return syscall(SYS_futex, word, FUTEX_CMP_REQUEUE | (priv ? FUTEX_PRIVATE_FLAG : 0), 0,
                 reinterpret_cast<void*>(static_cast<uintptr_t>(INT_MAX)), word,
                 __atomic_load_n(word, __ATOMIC_SEQ_CST));
}

// Waits up to 30 s for `n` waiters on `word`.
bool AwaitQueued(uint32_t* word, long n, bool priv = true) {
  for (int i = 0; i < 30000; ++i) {
    if (Queued(word, priv) >= n) return true;
    usleep(1000);
  }
  return false;
}

long Wake(uint32_t* word, int n, bool priv = true) {
  return syscall(SYS_futex, word, FUTEX_WAKE | (priv ? FUTEX_PRIVATE_FLAG : 0), n, nullptr,
                 nullptr, 0);
}

// A thread in one futex_waitv() on `w` with a 30 s deadline; result() is
// its return value or -errno.
class Waiter {
 public:
  explicit Waiter(std::vector<Waitv> w) : w_(std::move(w)) {
    th_ = std::thread([this] {
      timespec to = In(CLOCK_MONOTONIC, 30000);
      long r = FutexWaitv(w_.data(), w_.size(), 0, &to, CLOCK_MONOTONIC);
      result_ = r < 0 ? -errno : r;
    });
  }
  ~Waiter() { Join(); }
  long Join() {
    if (th_.joinable()) th_.join();
    return result_;
  }

 private:
  std::vector<Waitv> w_;
  long result_ = 0;
  std::thread th_;
};

TEST(FutexWaitvTest, ArgumentChecks) {
  uint32_t word = 0;
  Waitv w = Entry(&word, 0);
  timespec to = In(CLOCK_MONOTONIC, 1000);
  EXPECT_ERRNO(EINVAL, FutexWaitv(&w, 1, 1, &to, CLOCK_MONOTONIC));  // flags
  EXPECT_ERRNO(EINVAL, FutexWaitv(&w, 0, 0, &to, CLOCK_MONOTONIC));
  EXPECT_ERRNO(EINVAL, FutexWaitv(&w, 129, 0, &to, CLOCK_MONOTONIC));
  EXPECT_ERRNO(EINVAL, FutexWaitv(nullptr, 1, 0, &to, CLOCK_MONOTONIC));
  EXPECT_ERRNO(EINVAL, FutexWaitv(&w, 1, 0, &to, CLOCK_TAI));
  EXPECT_ERRNO(EINVAL, FutexWaitv(&w, 1, 0, &to, CLOCK_BOOTTIME));
  // The clock is looked at only with a timeout.
  w.val = 1;
  EXPECT_ERRNO(EAGAIN, FutexWaitv(&w, 1, 0, nullptr, CLOCK_TAI));
  w.val = 0;
  // The timeout: readable, then valid (futex_init_timeout()).
  EXPECT_ERRNO(EFAULT, FutexWaitv(&w, 1, 0, reinterpret_cast<timespec*>(8), CLOCK_MONOTONIC));
  timespec bad{1, 1000000000};
  EXPECT_ERRNO(EINVAL, FutexWaitv(&w, 1, 0, &bad, CLOCK_MONOTONIC));
  bad = {-1, 0};
  EXPECT_ERRNO(EINVAL, FutexWaitv(&w, 1, 0, &bad, CLOCK_REALTIME));
  // 129 entries are refused before the array is read.
  EXPECT_ERRNO(EINVAL, FutexWaitv(reinterpret_cast<Waitv*>(8), 129, 0, &to, CLOCK_MONOTONIC));
  EXPECT_ERRNO(EFAULT, FutexWaitv(reinterpret_cast<Waitv*>(8), 1, 0, &to, CLOCK_MONOTONIC));
}

TEST(FutexWaitvTest, EntryChecks) {
  uint32_t word = 0;
  timespec to = In(CLOCK_MONOTONIC, 1000);
  auto with = [&](uint32_t flags, uint32_t reserved = 0, uint64_t val = 0) {
    Waitv w{val, reinterpret_cast<uintptr_t>(&word), flags, reserved};
    return FutexWaitv(&w, 1, 0, &to, CLOCK_MONOTONIC);
  };
  EXPECT_ERRNO(EINVAL, with(kPriv));            // no size
  EXPECT_ERRNO(EINVAL, with(kPriv | 0));        // FUTEX2_SIZE_U8
  EXPECT_ERRNO(EINVAL, with(kPriv | 1));        // FUTEX2_SIZE_U16
  EXPECT_ERRNO(EINVAL, with(kPriv | 3));        // FUTEX2_SIZE_U64
  EXPECT_ERRNO(EINVAL, with(kU32Priv | 0x10));  // unknown flag
  EXPECT_ERRNO(EINVAL, with(kU32Priv | FUTEX_CLOCK_REALTIME));
  EXPECT_ERRNO(EINVAL, with(kU32Priv, 1));      // __reserved
  // futex_validate_input(): a value wider than the word.
  EXPECT_ERRNO(EINVAL, with(kU32Priv, 0, 1ull << 32));
  // Each entry is read and checked before the next is read.
  Waitv* page = static_cast<Waitv*>(
      mmap(nullptr, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(page, MAP_FAILED);
  ASSERT_OK(munmap(reinterpret_cast<char*>(page) + 4096, 4096));
  Waitv* last = reinterpret_cast<Waitv*>(reinterpret_cast<char*>(page) + 4096 - sizeof(Waitv));
  *last = Entry(&word, 0, kPriv);
  EXPECT_ERRNO(EINVAL, FutexWaitv(last, 2, 0, &to, CLOCK_MONOTONIC));
  *last = Entry(&word, 1);
  EXPECT_ERRNO(EFAULT, FutexWaitv(last, 2, 0, &to, CLOCK_MONOTONIC));
  munmap(page, 4096);
}

TEST(FutexWaitvTest, AddressChecksComeBeforeValues) {
  uint32_t words[2] = {0, 0};
  timespec to = In(CLOCK_MONOTONIC, 1000);
  Waitv w[2];
  // Unaligned: EINVAL, even behind a word that cannot be read.
  w[0] = Entry(nullptr, 0);
  w[1] = Entry(reinterpret_cast<uint32_t*>(reinterpret_cast<char*>(words) + 1), 0);
  EXPECT_ERRNO(EINVAL, FutexWaitv(w, 2, 0, &to, CLOCK_MONOTONIC));
  // Beyond user space: EFAULT when its key is made (access_ok()).
  w[0] = Entry(&words[0], 1);
  w[1] = Entry(reinterpret_cast<uint32_t*>(0xffff800000000000ull), 0);
  EXPECT_ERRNO(EFAULT, FutexWaitv(w, 2, 0, &to, CLOCK_MONOTONIC));
  // A private word that is not mapped faults only when it is read, in
  // order with the values.
  w[0] = Entry(&words[0], 1);
  w[1] = Entry(nullptr, 0);
  EXPECT_ERRNO(EAGAIN, FutexWaitv(w, 2, 0, &to, CLOCK_MONOTONIC));
  w[0] = Entry(nullptr, 0);
  w[1] = Entry(&words[1], 1);
  EXPECT_ERRNO(EFAULT, FutexWaitv(w, 2, 0, &to, CLOCK_MONOTONIC));
  // A shared one needs its page for its key (get_futex_key()).
  w[0] = Entry(&words[0], 1);
  w[1] = Entry(nullptr, 0, kU32);
  EXPECT_ERRNO(EFAULT, FutexWaitv(w, 2, 0, &to, CLOCK_MONOTONIC));
}

TEST(FutexWaitvTest, MismatchQueuesNothing) {
  uint32_t words[3] = {0, 0, 5};
  std::vector<Waitv> w = {Entry(&words[0], 0), Entry(&words[1], 0), Entry(&words[2], 0)};
  timespec to = In(CLOCK_MONOTONIC, 1000);
  EXPECT_ERRNO(EAGAIN, FutexWaitv(w.data(), 3, 0, &to, CLOCK_MONOTONIC));
  EXPECT_EQ(Queued(&words[0], true), 0);
  EXPECT_EQ(Queued(&words[1], true), 0);
}

TEST(FutexWaitvTest, Timeouts) {
  uint32_t word = 0;
  Waitv w = Entry(&word, 0);
  for (clockid_t clock : {CLOCK_MONOTONIC, CLOCK_REALTIME}) {
    timespec past{0, 0};
    EXPECT_ERRNO(ETIMEDOUT, FutexWaitv(&w, 1, 0, &past, clock));
    const int64_t start = NowMs();
    timespec to = In(clock, 50);
    EXPECT_ERRNO(ETIMEDOUT, FutexWaitv(&w, 1, 0, &to, clock));
    EXPECT_GE(NowMs() - start, 49);
    EXPECT_EQ(Queued(&word, true), 0);  // nothing left behind
  }
}

// A wake of any one of 128 words ends the wait with that word's index.
TEST(FutexWaitvTest, WakeAnyOf128) {
  std::vector<uint32_t> words(128, 7);
  for (int k : {0, 77, 127}) {
    std::vector<Waitv> w;
    for (auto& word : words) w.push_back(Entry(&word, 7));
    Waiter waiter(w);
    // Queued in order: the last one queued means all are.
    ASSERT_TRUE(AwaitQueued(&words[127], 1));
    EXPECT_EQ(Queued(&words[k], true), 1);
    EXPECT_EQ(Wake(&words[k], 1), 1);
    EXPECT_EQ(waiter.Join(), k);
    // The others were taken off their words.
    for (auto& word : words) EXPECT_EQ(Queued(&word, true), 0);
  }
}

// A private and a shared entry of one word have different keys
// (FUT_OFF_MMSHARED): each wake finds only its own.
TEST(FutexWaitvTest, PrivateAndSharedKeysApart) {
  uint32_t word = 0;
  for (bool shared_first : {true, false}) {
    Waiter waiter({Entry(&word, 0, kU32Priv), Entry(&word, 0, kU32)});
    ASSERT_TRUE(AwaitQueued(&word, 1, /*priv=*/true));
    ASSERT_TRUE(AwaitQueued(&word, 1, /*priv=*/false));
    EXPECT_EQ(Wake(&word, INT_MAX, /*priv=*/!shared_first), 1);
    EXPECT_EQ(waiter.Join(), shared_first ? 1 : 0);
  }
}

// A word twice: a wake may take both entries; the index is the highest
// woken (futex_unqueue_multiple()).
TEST(FutexWaitvTest, SameWordTwice) {
  uint32_t word = 0;
  Waiter waiter({Entry(&word, 0), Entry(&word, 0)});
  ASSERT_TRUE(AwaitQueued(&word, 2));
  EXPECT_EQ(Wake(&word, INT_MAX), 2);
  EXPECT_EQ(waiter.Join(), 1);
}

// FUTEX_CMP_REQUEUE moves an entry to another word; a wake there ends the
// wait with the entry's index.
TEST(FutexWaitvTest, RequeuedEntry) {
  uint32_t a = 0, b = 0, other = 3;
  Waiter waiter({Entry(&other, 3), Entry(&a, 0)});
  ASSERT_TRUE(AwaitQueued(&a, 1));
  EXPECT_EQ(syscall(SYS_futex, &a, FUTEX_CMP_REQUEUE_PRIVATE, 0,
                    reinterpret_cast<void*>(static_cast<uintptr_t>(1)), &b, 0),
            1);
  EXPECT_EQ(Wake(&a, INT_MAX), 0);
  EXPECT_EQ(Wake(&b, INT_MAX), 1);
  EXPECT_EQ(waiter.Join(), 1);
}

// Shared words in MAP_SHARED memory meet across processes.
TEST(FutexWaitvTest, SharedAcrossFork) {
  auto* words = static_cast<uint32_t*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(words, MAP_FAILED);
  words[0] = words[1] = 0;
  pid_t child = fork();
  if (child == 0) {
    Waitv w[2] = {Entry(&words[0], 0, kU32), Entry(&words[1], 0, kU32)};
    timespec to = In(CLOCK_MONOTONIC, 30000);
    _exit(static_cast<int>(FutexWaitv(w, 2, 0, &to, CLOCK_MONOTONIC)) == 1 ? 0 : 1);
  }
  ASSERT_GT(child, 0);
  EXPECT_TRUE(AwaitQueued(&words[1], 1, /*priv=*/false));
  EXPECT_EQ(Wake(&words[1], 1, /*priv=*/false), 1);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EXIT_CODE(status, 0);
  munmap(words, 4096);
}

std::atomic<int> g_signals{0};
void CountSignal(int) { g_signals.fetch_add(1); }

// A signal ends the wait with EINTR, or restarts it under SA_RESTART (its
// timeout is absolute).
TEST(FutexWaitvTest, Signals) {
  for (bool restart : {false, true}) {
    struct sigaction sa {}, old;
    sa.sa_handler = CountSignal;
    sa.sa_flags = restart ? SA_RESTART : 0;
    ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
    uint32_t word = 0;
    std::atomic<pid_t> tid{0};
    long result = 0;
    std::thread th([&] {
      tid = static_cast<pid_t>(syscall(SYS_gettid));
      Waitv w = Entry(&word, 0);
      timespec to = In(CLOCK_MONOTONIC, 30000);
      long r = FutexWaitv(&w, 1, 0, &to, CLOCK_MONOTONIC);
      result = r < 0 ? -errno : r;
    });
    ASSERT_TRUE(AwaitQueued(&word, 1));
    g_signals = 0;
    ASSERT_OK(syscall(SYS_tgkill, getpid(), tid.load(), SIGUSR1));
    if (restart) {
      // Handled, then queued again.
      for (int i = 0; i < 30000 && g_signals.load() == 0; ++i) usleep(1000);
      EXPECT_EQ(g_signals.load(), 1);
      EXPECT_TRUE(AwaitQueued(&word, 1));
      EXPECT_EQ(Wake(&word, 1), 1);
    }
    th.join();
    EXPECT_EQ(result, restart ? 0 : -EINTR);
    EXPECT_EQ(Queued(&word, true), 0);
    sigaction(SIGUSR1, &old, nullptr);
  }
}

}  // namespace
}  // namespace syscall_test
