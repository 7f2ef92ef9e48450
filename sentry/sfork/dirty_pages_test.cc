#include "sentry/sfork/dirty_pages.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
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

}  // namespace
}  // namespace seedvisor::sentry
