#include "sentry/kernel/time_namespace.h"

#include <time.h>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

constexpr int64_t kSec = 1000000000LL;
constexpr int64_t kNow = 500 * kSec;  // what the host's clocks read "now"

TEST(TimeNamespaceTest, InitialHasNoOffsets) {
  EXPECT_EQ(TimeNamespace::OffsetOf(nullptr, CLOCK_MONOTONIC), 0);
  EXPECT_EQ(TimeNamespace::InoOf(nullptr), TimeNamespace::kInitIno);
}

TEST(TimeNamespaceTest, WrittenOffsetsApplyToTheirClocks) {
  auto ns = TimeNamespace::CopyOf(nullptr);
  ASSERT_TRUE(ns->WriteOffsets("monotonic 10 5\nboottime -3 0\n", kNow, kNow).ok());
  for (clockid_t c : {CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC_COARSE}) {
    EXPECT_EQ(TimeNamespace::OffsetOf(ns.get(), c), 10 * kSec + 5) << c;
  }
  for (clockid_t c : {CLOCK_BOOTTIME, CLOCK_BOOTTIME_ALARM}) {
    EXPECT_EQ(TimeNamespace::OffsetOf(ns.get(), c), -3 * kSec) << c;
  }
  for (clockid_t c : {CLOCK_REALTIME, CLOCK_TAI, CLOCK_PROCESS_CPUTIME_ID}) {
    EXPECT_EQ(TimeNamespace::OffsetOf(ns.get(), c), 0) << c;
  }
  // The format Linux prints (%-10s %10lld %9ld), fractions of negative
  // offsets positive.
  EXPECT_EQ(ns->OffsetsText(),
            "monotonic          10         5\nboottime           -3         0\n");
  ASSERT_TRUE(ns->WriteOffsets("7 -1 500000000", kNow, kNow).ok());  // CLOCK_BOOTTIME
  EXPECT_EQ(TimeNamespace::OffsetOf(ns.get(), CLOCK_BOOTTIME), -kSec / 2);
  EXPECT_NE(ns->OffsetsText().find("boottime           -1 500000000\n"), std::string::npos);
}

TEST(TimeNamespaceTest, ToHostClampsAsLinux) {
  auto ns = TimeNamespace::CopyOf(nullptr);
  ASSERT_TRUE(ns->WriteOffsets("monotonic 10 0\nboottime -5 0", kNow, kNow).ok());
  EXPECT_EQ(TimeNamespace::ToHostNs(ns.get(), CLOCK_MONOTONIC, 15 * kSec), 5 * kSec);
  EXPECT_EQ(TimeNamespace::ToHostNs(ns.get(), CLOCK_MONOTONIC, 3 * kSec), 0);  // passed
  EXPECT_EQ(TimeNamespace::ToHostNs(ns.get(), CLOCK_BOOTTIME, INT64_MAX), INT64_MAX);
  EXPECT_EQ(TimeNamespace::ToHostNs(ns.get(), CLOCK_REALTIME, 7), 7);
  EXPECT_EQ(TimeNamespace::ToHostNs(nullptr, CLOCK_MONOTONIC, 7), 7);
  EXPECT_EQ(TimeNamespace::SaturatedNs(timespec{3, 5}), 3 * kSec + 5);
  EXPECT_EQ(TimeNamespace::SaturatedNs(timespec{static_cast<time_t>(1LL << 40), 0}), INT64_MAX);
}

TEST(TimeNamespaceTest, CopyKeepsOffsetsAndGetsItsOwnIno) {
  auto a = TimeNamespace::CopyOf(nullptr);
  ASSERT_TRUE(a->WriteOffsets("monotonic 4 0", kNow, kNow).ok());
  auto b = TimeNamespace::CopyOf(a.get());
  EXPECT_EQ(TimeNamespace::OffsetOf(b.get(), CLOCK_MONOTONIC), 4 * kSec);
  EXPECT_NE(a->ino(), b->ino());
  EXPECT_NE(b->ino(), TimeNamespace::kInitIno);
}

TEST(TimeNamespaceTest, BadWritesChangeNothing) {
  auto ns = TimeNamespace::CopyOf(nullptr);
  ASSERT_TRUE(ns->WriteOffsets("monotonic 1 0", kNow, kNow).ok());
  auto err = [&](const char* text) {
    Status s = ns->WriteOffsets(text, kNow, kNow);
    return s.ok() ? 0 : s.error().value();
  };
  EXPECT_EQ(err("realtime 1 0"), EINVAL);
  EXPECT_EQ(err("0 1 0"), EINVAL);
  EXPECT_EQ(err("monotonic 1"), EINVAL);
  EXPECT_EQ(err("monotonic x 0"), EINVAL);
  EXPECT_EQ(err("monotonic 1 1000000000"), EINVAL);
  EXPECT_EQ(err("monotonic 1 0\nboottime 1 0\nmonotonic 2 0"), EINVAL);
  EXPECT_EQ(err(""), EINVAL);
  // Below the clock's zero, or past KTIME_SEC_MAX / 2.
  EXPECT_EQ(err("monotonic -501 0"), ERANGE);
  EXPECT_EQ(err("boottime 1 0\nmonotonic -501 0"), ERANGE);
  EXPECT_EQ(err("boottime 9000000000 0"), ERANGE);
  EXPECT_EQ(TimeNamespace::OffsetOf(ns.get(), CLOCK_MONOTONIC), kSec);
  EXPECT_EQ(TimeNamespace::OffsetOf(ns.get(), CLOCK_BOOTTIME), 0);
  EXPECT_EQ(err("monotonic -500 0"), 0);  // exactly zero is allowed
}

TEST(TimeNamespaceTest, EnteredIsFrozen) {
  auto ns = TimeNamespace::CopyOf(nullptr);
  ns->Enter();
  Status s = ns->WriteOffsets("monotonic 1 0", kNow, kNow);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().value(), EACCES);
  // A malformed write is EINVAL still (checked before the freeze).
  s = ns->WriteOffsets("monotonic", kNow, kNow);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().value(), EINVAL);
  EXPECT_EQ(TimeNamespace::OffsetOf(ns.get(), CLOCK_MONOTONIC), 0);
}

}  // namespace
}  // namespace seedvisor::sentry
