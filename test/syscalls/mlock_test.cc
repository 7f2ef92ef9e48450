// mlock(2), munlock(2), mlockall(2): the range must be mapped (ENOMEM),
// RLIMIT_MEMLOCK bounds what a process without CAP_IPC_LOCK may lock
// (ENOMEM past it, EPERM if it is 0), and mlockall's flags.
#include <errno.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

const size_t kPage = getpagesize();

// Two mapped pages with an unmapped one after them.
char* MapTwoPagesBeforeAHole() {
  char* m = static_cast<char*>(
      mmap(nullptr, 3 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (m == MAP_FAILED) return nullptr;
  munmap(m + 2 * kPage, kPage);
  return m;
}

TEST(Mlock, RangeMustBeMapped) {
  char* m = MapTwoPagesBeforeAHole();
  ASSERT_NE(m, nullptr);
  EXPECT_OK(mlock(m, 2 * kPage));
  EXPECT_OK(munlock(m, 2 * kPage));
  // An unaligned start and length cover the pages they touch.
  EXPECT_OK(mlock(m + 100, kPage));
  EXPECT_OK(munlock(m + 100, kPage));
  EXPECT_ERRNO(ENOMEM, mlock(m + kPage, 2 * kPage));
  EXPECT_ERRNO(ENOMEM, munlock(m + kPage, 2 * kPage));
  EXPECT_ERRNO(ENOMEM, mlock(m + 2 * kPage, kPage));
  EXPECT_ERRNO(ENOMEM, munlock(m + 2 * kPage, kPage));
  EXPECT_ERRNO(ENOMEM, mlock(m + 2 * kPage - 1, 2));
  // Nothing to lock: nothing checked.
  EXPECT_OK(mlock(m + 2 * kPage, 0));
  munmap(m, 2 * kPage);
}

TEST(Mlock, RlimitMemlockWithoutCapIpcLock) {
  int status = RunInChild([] {
    char* m = MapTwoPagesBeforeAHole();
    if (m == nullptr) return 1;
    rlimit one = {kPage, kPage};
    if (setrlimit(RLIMIT_MEMLOCK, &one) != 0) return 2;
    if (!DropEffective(CAP_IPC_LOCK)) return 3;
    if (mlock(m, 2 * kPage) != -1 || errno != ENOMEM) return 4;
    if (mlock(m, kPage) != 0) return 5;
    if (munlock(m, 2 * kPage) != 0) return 6;
    // The whole address space is more than a page: MCL_CURRENT is ENOMEM.
    if (mlockall(MCL_CURRENT) != -1 || errno != ENOMEM) return 7;
    rlimit zero = {0, 0};
    if (setrlimit(RLIMIT_MEMLOCK, &zero) != 0) return 8;
    if (mlock(m, kPage) != -1 || errno != EPERM) return 9;
    if (mlockall(MCL_FUTURE) != -1 || errno != EPERM) return 10;
    if (munlock(m, kPage) != 0) return 11;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(Mlock, MlockallFlags) {
  EXPECT_ERRNO(EINVAL, mlockall(0));
  EXPECT_ERRNO(EINVAL, mlockall(MCL_ONFAULT));
  EXPECT_ERRNO(EINVAL, mlockall(~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)));
  EXPECT_OK(munlockall());
}

}  // namespace
}  // namespace syscall_test
