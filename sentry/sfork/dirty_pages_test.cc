#include "sentry/sfork/dirty_pages.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kPages = 64;

// A child that shares `mem` copy-on-write, writes the pages `dirty` names,
// tells us (a byte on `ready`), and waits for a byte on `go`; then, if
// `write_all`, it checks that every page still holds its pattern, writes
// them all and sends its minor faults while writing (a long), and exits.
pid_t Child(char* mem, const std::vector<size_t>& dirty, int ready, int go, bool write_all) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  setpgid(0, 0);  // its own group, as a stub copy is in its anchor's
  for (size_t p : dirty) mem[p * kPage] = 'd';
  char c = 'r';
  if (write(ready, &c, 1) != 1) _exit(2);
  if (read(go, &c, 1) != 1) _exit(0);
  if (!write_all) _exit(0);
  for (size_t p = 0; p < kPages; ++p) {
    if (mem[p * kPage + 1] != static_cast<char>('a' + p % 26)) _exit(3);
  }
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  for (size_t p = 0; p < kPages; ++p) mem[p * kPage + 2] = 'w';
  getrusage(RUSAGE_SELF, &after);
  long faults = after.ru_minflt - before.ru_minflt;
  if (write(ready, &faults, sizeof(faults)) != static_cast<ssize_t>(sizeof(faults))) _exit(4);
  _exit(0);
}

char* Pattern() {
  void* m =
      mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(m, MAP_FAILED);
  char* mem = static_cast<char*>(m);
  for (size_t p = 0; p < kPages; ++p) memset(mem + p * kPage, 'a' + p % 26, kPage);
  return mem;
}

TEST(DirtyPagesTest, TheAnchorReportsThePagesACopyWrote) {
  char* mem = Pattern();
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = Child(mem, {3, 10, 20}, ready[1], go[0], false);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);

  const uint64_t base = reinterpret_cast<uint64_t>(mem);
  int plan[2];
  ASSERT_EQ(pipe(plan), 0);
  const std::string bytes = EncodeScanPlan({{.tag = 7, .pid = child,
                                             .ranges = {{base, base + kPages * kPage}}}});
  ASSERT_EQ(write(plan[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(plan[1]);
  AnchorReadPlan(plan[0]);
  close(plan[0]);

  DirtyPageLog& log = DirtyPageLog::Get();
  const int fd = log.report_fd();
  ASSERT_GE(fd, 0);
  // A report nobody expects does not count.
  AnchorScanAndReport(fd, child);
  log.Drain();
  EXPECT_EQ(log.Pages(7), nullptr);
  log.Expect(child);
  // A process outside the anchor's group is never read.
  log.Expect(getpid());
  AnchorScanAndReport(fd, getpid());
  log.Drain();
  EXPECT_EQ(log.Pages(7), nullptr);
  AnchorScanAndReport(fd, child);
  log.Drain();
  ASSERT_NE(log.Pages(7), nullptr);
  EXPECT_EQ(*log.Pages(7),
            (std::vector<uint64_t>{base + 3 * kPage, base + 10 * kPage, base + 20 * kPage}));

  ASSERT_EQ(write(go[1], &c, 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  munmap(mem, kPages * kPage);
}

TEST(DirtyPagesTest, PrebrokenPagesCostTheirProcessNoFault) {
  char* mem = Pattern();
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = Child(mem, {}, ready[1], go[0], true);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  std::vector<uint64_t> half;
  for (size_t p = 0; p < kPages / 2; ++p) {
    half.push_back(reinterpret_cast<uint64_t>(mem) + p * kPage);
  }
  // One that is not mapped there is skipped.
  half.push_back(0x1000);
  EXPECT_EQ(PrebreakPages(child, half), kPages / 2);
  ASSERT_EQ(write(go[1], &c, 1), 1);
  long faults = -1;
  ASSERT_EQ(read(ready[0], &faults, sizeof(faults)), static_cast<ssize_t>(sizeof(faults)));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's pages changed (3) or it failed";
  // The other half faults (copy-on-write), the written half does not.
  EXPECT_GE(faults, static_cast<long>(kPages / 2));
  EXPECT_LT(faults, static_cast<long>(kPages / 2 + 8));
  munmap(mem, kPages * kPage);
}

// A child in its own group (as a stub copy is in its anchor's) that has
// written all `n` pages at `mem` (its own now), says so on `ready` and
// exits once `go` says anything.
pid_t DirtyChild(char* mem, size_t n, int ready, int go) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  setpgid(0, 0);
  for (size_t p = 0; p < n; ++p) mem[p * kPage] = 'd';
  char c = 'r';
  if (write(ready, &c, 1) != 1) _exit(2);
  (void)!read(go, &c, 1);
  _exit(0);
}

// Has `child`'s anchor report on `log` what it holds of `targets`.
void Report(DirtyPageLog& log, pid_t child, const std::vector<ScanTarget>& targets) {
  int plan[2];
  ASSERT_EQ(pipe(plan), 0);
  const std::string bytes = EncodeScanPlan(targets);
  ASSERT_FALSE(bytes.empty());
  ASSERT_EQ(write(plan[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(plan[1]);
  AnchorReadPlan(plan[0]);
  close(plan[0]);
  const int fd = log.report_fd();
  ASSERT_GE(fd, 0);
  log.Expect(child);
  AnchorScanAndReport(fd, child);
  log.Drain();
}

TEST(DirtyPagesTest, AnAnchorThatNeverReportsIsForgottenOldestFirst) {
  DirtyPageLog log;
  log.Expect(1000);
  log.Expect(500);  // a lower pid, expected later
  for (pid_t p = 2000; p < 2000 + static_cast<pid_t>(DirtyPageLog::kMaxExpected) - 1; ++p) {
    log.Expect(p);
  }
  EXPECT_FALSE(log.Expects(1000));
  EXPECT_TRUE(log.Expects(500));
  EXPECT_TRUE(log.Expects(2000));
  // Expected again: the newest now.
  log.Expect(500);
  log.Expect(3000);
  EXPECT_TRUE(log.Expects(500));
  EXPECT_FALSE(log.Expects(2000));
}

// What one fork's report can make the seed write ahead is bounded per
// address space and in all, however many address spaces it names; and the
// seed keeps only the last report.
TEST(DirtyPagesTest, AReportIsBoundedAndReplacesTheLastOne) {
  constexpr size_t kMany = kMaxLearnedPages + 64;
  void* m = mmap(nullptr, kMany * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  char* mem = static_cast<char*>(m);
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = DirtyChild(mem, kMany, ready[1], go[0]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  const uint64_t base = reinterpret_cast<uint64_t>(mem);
  const std::vector<std::pair<uint64_t, uint64_t>> all = {{base, base + kMany * kPage}};

  DirtyPageLog log;
  // Three address spaces (the same process three times here), each with
  // more written than one may report.
  Report(log, child, {{.tag = 1, .pid = child, .ranges = all},
                      {.tag = 2, .pid = child, .ranges = all},
                      {.tag = 3, .pid = child, .ranges = all}});
  size_t total = 0;
  for (uint64_t tag : {1, 2, 3}) {
    const std::vector<uint64_t>* pages = log.Pages(tag);
    const size_t n = pages == nullptr ? 0 : pages->size();
    EXPECT_LE(n, kMaxLearnedPages) << "address space " << tag;
    total += n;
  }
  EXPECT_EQ(total, kMaxReportedPages);
  ASSERT_NE(log.Pages(1), nullptr);
  EXPECT_EQ(log.Pages(1)->front(), base);

  // The next report names another address space only: the last one's
  // pages go.
  Report(log, child, {{.tag = 4, .pid = child, .ranges = {{base, base + 3 * kPage}}}});
  EXPECT_EQ(log.Pages(1), nullptr);
  EXPECT_EQ(log.Pages(2), nullptr);
  ASSERT_NE(log.Pages(4), nullptr);
  EXPECT_EQ(log.Pages(4)->size(), 3u);

  ASSERT_EQ(write(go[1], &c, 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  munmap(mem, kMany * kPage);
}

TEST(DirtyPagesTest, PruneForgetsAddressSpacesThatAreGone) {
  char* mem = Pattern();
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = DirtyChild(mem, 4, ready[1], go[0]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  const uint64_t base = reinterpret_cast<uint64_t>(mem);
  DirtyPageLog log;
  Report(log, child, {{.tag = 7, .pid = child, .ranges = {{base, base + 2 * kPage}}},
                      {.tag = 8, .pid = child, .ranges = {{base + 2 * kPage, base + 4 * kPage}}}});
  ASSERT_NE(log.Pages(7), nullptr);
  ASSERT_NE(log.Pages(8), nullptr);
  log.Prune({8});
  EXPECT_EQ(log.Pages(7), nullptr);
  ASSERT_NE(log.Pages(8), nullptr);
  EXPECT_EQ(*log.Pages(8), (std::vector<uint64_t>{base + 2 * kPage, base + 3 * kPage}));
  ASSERT_EQ(write(go[1], &c, 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  munmap(mem, kPages * kPage);
}

}  // namespace
}  // namespace seedvisor::sentry
