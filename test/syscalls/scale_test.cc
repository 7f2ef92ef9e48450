// Tables at the sizes real programs reach: tens of thousands of fds and of
// mappings. Each operation must stay cheap (the sentry's fd table and VMA
// map are O(log n)); these tests assert what Linux does at that size —
// lowest-free fd numbers, dup2 to high fds, distinct mappings and their
// merging — and finish in seconds only if nothing is quadratic.
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace {

// 32768 fds where RLIMIT_NOFILE can be raised that far (CAP_SYS_RESOURCE:
// the sandbox's root has it); else as many as the hard limit allows (a
// container without it, natively).
constexpr int kWantFds = 32768;
constexpr int kMappings = 65000;

// Lines of /proc/self/maps (one per VMA).
long MapsLines() {
  FILE* f = fopen("/proc/self/maps", "r");
  if (f == nullptr) return -1;
  long lines = 0;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
    for (size_t i = 0; i < n; ++i) lines += buf[i] == '\n';
  }
  fclose(f);
  return lines;
}

class FdScaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved_), 0);
    rlimit want{kWantFds + 1024, kWantFds + 1024};
    if (saved_.rlim_max >= want.rlim_max) want.rlim_max = saved_.rlim_max;
    // Raising the hard limit needs CAP_SYS_RESOURCE (setrlimit(2)).
    if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
      ASSERT_EQ(errno, EPERM);
      want = rlimit{saved_.rlim_max, saved_.rlim_max};
      ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &want), 0);
    }
    fds_ = static_cast<int>(std::min<rlim_t>(kWantFds, want.rlim_cur - 1024));
    ASSERT_GE(fds_, 8192) << "RLIMIT_NOFILE's hard limit is too low for this test";
    // Only 0, 1 and 2 stay: fds inherited from the runner would be holes.
    ASSERT_EQ(syscall(SYS_close_range, 3, ~0u, 0), 0);
  }
  void TearDown() override {
    syscall(SYS_close_range, 3, ~0u, 0);
    setrlimit(RLIMIT_NOFILE, &saved_);
  }
  rlimit saved_{};
  int fds_ = 0;
};

TEST_F(FdScaleTest, ThirtyTwoThousandOpensTakeTheLowestFreeFd) {
  std::vector<int> fds;
  const int first = open("/dev/null", O_RDONLY);
  ASSERT_GE(first, 0);
  fds.push_back(first);
  const int kFds = fds_;
  for (int i = 1; i < kFds; ++i) {
    const int fd = open("/dev/null", O_RDONLY);
    ASSERT_EQ(fd, first + i) << "open number " << i;
    fds.push_back(fd);
  }
  // Holes are refilled lowest first, whatever order they were made in.
  const int holes[] = {first + kFds - 100, first + 7, first + kFds / 2, first + 4095};
  for (int h : holes) ASSERT_EQ(close(h), 0);
  EXPECT_EQ(open("/dev/null", O_RDONLY), first + 7);
  EXPECT_EQ(open("/dev/null", O_RDONLY), first + 4095);
  EXPECT_EQ(dup(first), first + kFds / 2);
  // F_DUPFD: the lowest free fd at or above its argument.
  EXPECT_EQ(fcntl(first, F_DUPFD, first + 100), first + kFds - 100);
  EXPECT_EQ(fcntl(first, F_DUPFD, first + 100), first + kFds);
  // dup2 to a high fd, then the run below it is still what open fills.
  const int high = kFds + 1000;
  EXPECT_EQ(dup2(first, high), high);
  EXPECT_EQ(fcntl(high, F_GETFD), 0);
  EXPECT_EQ(close(first + 5), 0);
  EXPECT_EQ(open("/dev/null", O_RDONLY), first + 5);
  EXPECT_EQ(fcntl(first, F_DUPFD, high), high + 1);
  EXPECT_EQ(close(high), 0);
  EXPECT_EQ(fcntl(first, F_DUPFD, high - 1), high - 1);
  EXPECT_EQ(fcntl(first, F_DUPFD, high - 1), high);
}

TEST_F(FdScaleTest, TheLimitIsEmfileAtThatSize) {
  const int kFds = fds_;
  rlimit lim{static_cast<rlim_t>(kFds), static_cast<rlim_t>(kFds + 1024)};
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
  int last = -1;
  for (;;) {
    const int fd = dup(0);
    if (fd < 0) {
      EXPECT_EQ(errno, EMFILE);
      break;
    }
    ASSERT_GT(fd, last);
    last = fd;
  }
  EXPECT_EQ(last, kFds - 1);
  EXPECT_ERRNO(EMFILE, open("/dev/null", O_RDONLY));
  ASSERT_EQ(close(kFds / 2), 0);
  EXPECT_EQ(open("/dev/null", O_RDONLY), kFds / 2);
}

TEST(MappingScaleTest, SixtyFiveThousandMappingsStaySeparateThenMerge) {
  const long before = MapsLines();
  ASSERT_GT(before, 0);
  std::vector<char*> maps;
  maps.reserve(kMappings);
  const long page = sysconf(_SC_PAGESIZE);
  for (int i = 0; i < kMappings; ++i) {
    // Alternating protections: adjacent mappings cannot merge.
    const int prot = i % 2 ? PROT_READ | PROT_WRITE : PROT_READ;
    void* p = mmap(nullptr, page, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED) << "mapping " << i << ": " << strerror(errno);
    maps.push_back(static_cast<char*>(p));
  }
  // Every mapping is its own page and its own VMA.
  for (int i = 1; i < kMappings; ++i) ASSERT_NE(maps[i], maps[i - 1]);
  const long many = MapsLines();
  EXPECT_GE(many - before, kMappings - 2);
  // The writable ones are writable and private to their page.
  // (Only read: a page written gets its own anon_vma, and Linux merges no
  // two VMAs with different ones, which the sentry does not model.)
  for (int i = 0; i < kMappings; ++i) ASSERT_EQ(maps[i][0], 0);
  // One protection for all: Linux merges the neighbours (vma_merge()), so
  // a whole run of them is one VMA again.
  for (int i = 1; i < kMappings; i += 2) {
    ASSERT_EQ(mprotect(maps[i], page, PROT_READ), 0) << i;
  }
  const long merged = MapsLines();
  EXPECT_LT(merged - before, 100) << "before " << before << ", after " << merged;
  // And the memory is still there, each page its own.
  for (int i = 0; i < kMappings; i += 2) {
    ASSERT_EQ(mprotect(maps[i], page, PROT_READ | PROT_WRITE), 0) << i;
    maps[i][0] = static_cast<char>(i);
  }
  for (int i = 0; i < kMappings; i += 2) ASSERT_EQ(maps[i][0], static_cast<char>(i));
  for (char* p : maps) ASSERT_EQ(munmap(p, page), 0);
  EXPECT_LE(MapsLines(), before + 2);
}

TEST(MappingScaleTest, AdjacentAnonymousMappingsAreOneVma) {
  const long page = sysconf(_SC_PAGESIZE);
  // Four free pages between two PROT_NONE guards, which cannot merge.
  char* guard = static_cast<char*>(
      mmap(nullptr, 6 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(guard, MAP_FAILED);
  char* base = guard + page;
  ASSERT_EQ(munmap(base, 4 * page), 0);
  const long before = MapsLines();
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(mmap(base + i * page, page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0),
              base + i * page);
  }
  EXPECT_EQ(MapsLines(), before + 1);
  // mremap needs the old range inside one VMA: the merged four are one.
  void* moved = mremap(base, 4 * page, 8 * page, MREMAP_MAYMOVE);
  ASSERT_NE(moved, MAP_FAILED) << strerror(errno);
  EXPECT_EQ(munmap(moved, 8 * page), 0);
  EXPECT_EQ(munmap(guard, 6 * page), 0);
}

// Seconds since `start` (steady clock).
double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(MappingScaleTest, SharedFutexesAndMincoreLookUpOneMapping) {
  // 65000 VMAs in one range: a read-only run with every other page writable.
  const long page = sysconf(_SC_PAGESIZE);
  char* base = static_cast<char*>(
      mmap(nullptr, kMappings * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(base, MAP_FAILED);
  for (int i = 1; i < kMappings; i += 2) {
    ASSERT_EQ(mprotect(base + i * page, page, PROT_READ | PROT_WRITE), 0) << i;
  }
  // A shared futex's key comes from the one mapping that holds its word
  // (get_futex_key()); a wake costs microseconds whatever else is mapped
  // (a sandbox that copied the VMA list per call took ~70 ms here).
  auto* word = static_cast<uint32_t*>(
      mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(word, MAP_FAILED);
  constexpr int kWakes = 1000;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kWakes; ++i) {
    ASSERT_EQ(syscall(SYS_futex, word, FUTEX_WAKE, 1, nullptr, nullptr, 0), 0);
  }
  EXPECT_LT(SecondsSince(start), 2.0) << kWakes << " shared FUTEX_WAKEs";
  // mincore needs the whole range mapped: a lookup per VMA, not a walk of
  // all of them per VMA.
  constexpr int kPages = 500;
  std::vector<unsigned char> vec(kPages);
  start = std::chrono::steady_clock::now();
  ASSERT_EQ(mincore(base, kPages * page, vec.data()), 0) << strerror(errno);
  EXPECT_LT(SecondsSince(start), 2.0) << "mincore over " << kPages << " VMAs";
  ASSERT_EQ(munmap(word, page), 0);
  ASSERT_EQ(munmap(base, kMappings * page), 0);
}

}  // namespace
