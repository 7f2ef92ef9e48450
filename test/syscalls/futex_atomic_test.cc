// The futex updates the kernel makes to a user word while other threads
// change it with their own atomic instructions: FUTEX_WAKE_OP's second word
// and a robust list's owner-died mark at thread exit. Linux makes both with
// one cmpxchg (a loop of them), so no concurrent update is lost; a
// read-then-write would drop what another thread stored in between.
// Also FUTEX_WAKE_OP's encoding: signed 12-bit oparg/cmparg, the shift
// flag, ENOSYS for an unknown op or comparison.
#include <errno.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// FUTEX_WAKE_OP|FUTEX_PRIVATE_FLAG on `word2` (no waiters: returns 0).
long WakeOp(uint32_t* word2, uint32_t encoded) {
  static uint32_t word1 = 0;
  return syscall(SYS_futex, &word1, FUTEX_WAKE_OP | FUTEX_PRIVATE_FLAG, 0,
                 nullptr, word2, encoded);
}

// FUTEX_OP() with raw 12-bit fields (the uapi macro takes them as ints).
uint32_t Op(uint32_t op, uint32_t oparg, uint32_t cmp, uint32_t cmparg) {
  return ((op & 0xf) << 28) | ((cmp & 0xf) << 24) | ((oparg & 0xfff) << 12) |
         (cmparg & 0xfff);
}

TEST(FutexWakeOp, OperationsOnTheSecondWord) {
  uint32_t w = 5;
  EXPECT_EQ(WakeOp(&w, Op(FUTEX_OP_ADD, 0xfff, FUTEX_OP_CMP_EQ, 0)), 0);
  EXPECT_EQ(w, 4u);  // oparg -1
  EXPECT_EQ(WakeOp(&w, Op(FUTEX_OP_SET, 0xfff, FUTEX_OP_CMP_EQ, 0)), 0);
  EXPECT_EQ(w, 0xffffffffu);
  EXPECT_EQ(WakeOp(&w, Op(FUTEX_OP_ANDN | FUTEX_OP_OPARG_SHIFT, 31,
                          FUTEX_OP_CMP_EQ, 0)),
            0);
  EXPECT_EQ(w, 0x7fffffffu);
  EXPECT_EQ(WakeOp(&w, Op(FUTEX_OP_XOR, 0x0f0, FUTEX_OP_CMP_EQ, 0)), 0);
  EXPECT_EQ(w, 0x7fffff0fu);
  w = 0;
  EXPECT_EQ(WakeOp(&w, Op(FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT, 4,
                          FUTEX_OP_CMP_EQ, 0)),
            0);
  EXPECT_EQ(w, 16u);
  // An unknown op changes nothing; an unknown comparison comes after the
  // update.
  errno = 0;
  EXPECT_EQ(WakeOp(&w, Op(5, 1, FUTEX_OP_CMP_EQ, 0)), -1);
  EXPECT_EQ(errno, ENOSYS);
  EXPECT_EQ(w, 16u);
  errno = 0;
  EXPECT_EQ(WakeOp(&w, Op(FUTEX_OP_ADD, 1, 6, 0)), -1);
  EXPECT_EQ(errno, ENOSYS);
  EXPECT_EQ(w, 17u);
  // The second word must be aligned and mapped.
  alignas(8) char buf[8] = {};
  errno = 0;
  EXPECT_EQ(WakeOp(reinterpret_cast<uint32_t*>(buf + 1),
                   Op(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)),
            -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(WakeOp(reinterpret_cast<uint32_t*>(8),
                   Op(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)),
            -1);
  EXPECT_EQ(errno, EFAULT);
}

// One thread adds 1 << 16 to the word with lock xadd as fast as it can;
// this one adds 1 with FUTEX_WAKE_OP for a second (at most 60,000 times).
// Every add of both must be there.
TEST(FutexWakeOp, SecondWordUpdateLosesNoConcurrentStore) {
  uint32_t w = 0;
  std::atomic<bool> running{false}, stop{false};
  uint32_t adds = 0;
  std::thread adder([&] {
    running.store(true);
    while (!stop.load(std::memory_order_relaxed)) {
      __atomic_fetch_add(&w, 1u << 16, __ATOMIC_SEQ_CST);
      ++adds;
    }
  });
  while (!running.load()) {
  }
  const int64_t end = MonotonicNs() + 1'000'000'000;
  uint32_t ops = 0;
  while (ops < 60000 && (ops % 256 != 0 || MonotonicNs() < end)) {
    ASSERT_EQ(WakeOp(&w, Op(FUTEX_OP_ADD, 1, FUTEX_OP_CMP_EQ, 0)), 0);
    ++ops;
  }
  stop.store(true);
  adder.join();
  const uint32_t now = __atomic_load_n(&w, __ATOMIC_SEQ_CST);
  EXPECT_EQ(now & 0xffff, ops) << "FUTEX_WAKE_OP adds lost";
  EXPECT_EQ(now >> 16, adds & 0xffff) << "the other thread's adds lost";
}

struct RobustEntry {
  void* next;
  uint32_t word;
};

struct RobustHead {
  void* next;
  long futex_offset;
  void* pending;
};

// A thread that holds a robust futex exits while this one flips
// FUTEX_WAITERS in the word with lock xor. The kernel's owner-died mark
// keeps the waiters bit as it finds it, in one cmpxchg: so the bit this
// thread sees beside OWNER_DIED first is the parity of its flips before
// the mark. A read-then-write mark drops the flips made in between.
TEST(RobustList, OwnerDiedKeepsConcurrentWaitersBit) {
  constexpr int kRounds = 200;
  int torn = 0;
  for (int round = 0; round < kRounds; ++round) {
    RobustEntry entry{nullptr, 0};
    RobustHead head{&entry.next,
                    static_cast<long>(offsetof(RobustEntry, word) -
                                      offsetof(RobustEntry, next)),
                    nullptr};
    entry.next = &head.next;
    std::atomic<bool> holding{false};
    std::thread owner([&] {
      __atomic_store_n(&entry.word, static_cast<uint32_t>(gettid()),
                       __ATOMIC_SEQ_CST);
      ASSERT_EQ(syscall(SYS_set_robust_list, &head, sizeof(head)), 0);
      holding.store(true);
      // Returns: the thread ends, its robust list still naming the word.
    });
    while (!holding.load()) {
    }
    uint64_t flips = 0;
    uint32_t old = 0;
    const int64_t deadline = MonotonicNs() + 10'000'000'000;
    for (;;) {
      old = __atomic_fetch_xor(&entry.word, FUTEX_WAITERS, __ATOMIC_SEQ_CST);
      if (old & FUTEX_OWNER_DIED) break;
      ++flips;
      if ((flips & 1023) == 0) {
        ASSERT_LT(MonotonicNs(), deadline);
      }
    }
    owner.join();
    EXPECT_EQ(old & FUTEX_TID_MASK, 0u);
    if ((old & FUTEX_WAITERS) != ((flips & 1) ? FUTEX_WAITERS : 0u)) ++torn;
  }
  EXPECT_EQ(torn, 0) << "of " << kRounds
                     << " exits, this many lost a concurrent waiters bit";
}

}  // namespace
}  // namespace syscall_test
