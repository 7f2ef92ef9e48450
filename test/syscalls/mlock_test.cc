// mlock(2), munlock(2), mlockall(2): the range must be mapped (ENOMEM),
// RLIMIT_MEMLOCK bounds what a process without CAP_IPC_LOCK may lock
// (ENOMEM past it, EPERM if it is 0), and mlockall's flags. What is locked
// is counted (/proc/PID/status VmLck, smaps' Locked), locking faults pages
// in unless MLOCK_ONFAULT, and mincore(2) and /proc/PID/pagemap tell which
// pages are present.
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

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

// /proc/self/status's VmLck in kB, -1 if missing. Read without malloc: a
// heap that grows under mlockall(MCL_FUTURE) would change what it reads.
long VmLckKb() {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* at = strstr(buf, "\nVmLck:");
  long kb = -1;
  if (at == nullptr || sscanf(at, "\nVmLck: %ld kB", &kb) != 1) return -1;
  return kb;
}

// How many of the `pages` pages at `m` mincore(2) says are resident.
int Resident(char* m, size_t pages) {
  unsigned char vec[64];
  if (pages > sizeof(vec) || mincore(m, pages * kPage, vec) != 0) return -1;
  int n = 0;
  for (size_t i = 0; i < pages; ++i) n += vec[i] & 1;
  return n;
}

char* MapAnon(size_t pages, int flags = MAP_PRIVATE) {
  void* m = mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
  return m == MAP_FAILED ? nullptr : static_cast<char*>(m);
}

// mlock counts the pages it locks once, faults them in; munlock takes them
// off; mlock2(MLOCK_ONFAULT) counts without faulting (LTP mlock201, mlock203).
TEST(MlockAccounting, VmLckFollowsMlockAndMunlock) {
  int status = RunInChild([] {
    for (int shared : {MAP_PRIVATE, MAP_SHARED}) {
      char* m = MapAnon(8, shared);
      if (m == nullptr) return 1;
      const long before = VmLckKb();
      if (before < 0) return 2;
      if (Resident(m, 8) != 0) return 3;  // nothing touched yet
      if (mlock(m + kPage, 2 * kPage + 1) != 0) return 4;  // three pages
      if (VmLckKb() - before != static_cast<long>(3 * kPage / 1024)) return 5;
      if (Resident(m, 8) != 3) return 6;
      if (mlock(m + kPage, kPage) != 0) return 7;  // locked already: not counted twice
      if (VmLckKb() - before != static_cast<long>(3 * kPage / 1024)) return 8;
      if (munlock(m + 2 * kPage, kPage) != 0) return 9;
      if (VmLckKb() - before != static_cast<long>(2 * kPage / 1024)) return 10;
      m[7 * kPage] = 1;  // one page present, then lock four on fault
      if (syscall(SYS_mlock2, m + 4 * kPage, 4 * kPage, MLOCK_ONFAULT) != 0) return 11;
      if (VmLckKb() - before != static_cast<long>(6 * kPage / 1024)) return 12;
      if (Resident(m, 8) != 4) return 13;  // the three locked and the touched one
      // Locking on fault again, then for real, counts nothing new.
      if (syscall(SYS_mlock2, m + 4 * kPage, 4 * kPage, 0) != 0) return 14;
      if (VmLckKb() - before != static_cast<long>(6 * kPage / 1024)) return 15;
      if (Resident(m, 8) != 7) return 16;
      if (munmap(m, 8 * kPage) != 0) return 17;  // unmapping unlocks
      if (VmLckKb() != before) return 18;
    }
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// A hole stops munlock and mlock with ENOMEM after what came before it.
TEST(MlockAccounting, HoleLocksWhatComesBefore) {
  int status = RunInChild([] {
    char* m = MapTwoPagesBeforeAHole();
    if (m == nullptr) return 1;
    const long before = VmLckKb();
    if (mlock(m, 3 * kPage) != -1 || errno != ENOMEM) return 2;
    if (VmLckKb() - before != static_cast<long>(2 * kPage / 1024)) return 3;
    if (munlock(m, 3 * kPage) != -1 || errno != ENOMEM) return 4;
    if (VmLckKb() != before) return 5;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// MAP_LOCKED locks and faults in (LTP mmap14); mlockall locks everything,
// MCL_FUTURE what comes later, munlockall none (LTP munlockall01); a
// forked child has nothing locked.
TEST(MlockAccounting, MapLockedMlockallAndFork) {
  int status = RunInChild([] {
    const long before = VmLckKb();
    char* m = MapAnon(4, MAP_PRIVATE | MAP_LOCKED);
    if (m == nullptr) return 1;
    if (VmLckKb() - before != static_cast<long>(4 * kPage / 1024)) return 2;
    if (Resident(m, 4) != 4) return 3;
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) return 4;
    const long all = VmLckKb();
    if (all <= before + static_cast<long>(4 * kPage / 1024)) return 5;
    char* later = MapAnon(2);
    if (later == nullptr) return 6;
    // At least its two pages (a stack or heap that grew meanwhile is
    // locked too).
    if (VmLckKb() - all < static_cast<long>(2 * kPage / 1024)) return 7;
    if (Resident(later, 2) != 2) return 8;
    pid_t pid = fork();
    if (pid == 0) _exit(VmLckKb() == 0 ? 0 : 1);
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 9;
    if (munlockall() != 0) return 10;
    if (VmLckKb() != 0) return 11;
    char* after = MapAnon(2);  // MCL_FUTURE is gone too
    if (after == nullptr || VmLckKb() != 0 || Resident(after, 2) != 0) return 12;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// RLIMIT_MEMLOCK counts what is locked already: a range locked before is
// not counted again; past the limit mlock is ENOMEM and MAP_LOCKED EAGAIN.
TEST(MlockAccounting, RlimitCountsLockedPages) {
  int status = RunInChild([] {
    char* m = MapAnon(4);
    if (m == nullptr) return 1;
    if (munlockall() != 0) return 2;
    rlimit two = {2 * kPage, 2 * kPage};
    if (setrlimit(RLIMIT_MEMLOCK, &two) != 0) return 3;
    if (!DropEffective(CAP_IPC_LOCK)) return 4;
    if (mlock(m, kPage) != 0) return 5;
    if (mlock(m, 2 * kPage) != 0) return 6;  // one new page: fits
    if (mlock(m + 2 * kPage, kPage) != -1 || errno != ENOMEM) return 7;
    void* more = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
    if (more != MAP_FAILED || errno != EAGAIN) return 8;
    if (munlock(m, kPage) != 0) return 9;
    if (mlock(m + 2 * kPage, kPage) != 0) return 10;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// smaps shows a locked mapping all resident and all Locked (LTP mlock05).
TEST(MlockAccounting, SmapsLockedAndRss) {
  int status = RunInChild([] {
    constexpr size_t kLen = 1 << 20;
    char* m = static_cast<char*>(
        mmap(nullptr, kLen, PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (m == MAP_FAILED) return 1;
    if (mlock(m, kLen) != 0) return 2;
    FILE* f = fopen("/proc/self/smaps", "re");
    if (f == nullptr) return 3;
    char line[256];
    bool in = false;
    long rss = -1, locked = -1;
    while (fgets(line, sizeof(line), f) != nullptr) {
      unsigned long lo, hi;
      if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
        in = lo == reinterpret_cast<uintptr_t>(m);
        continue;
      }
      if (!in) continue;
      sscanf(line, "Rss: %ld kB", &rss);
      sscanf(line, "Locked: %ld kB", &locked);
    }
    fclose(f);
    if (rss != static_cast<long>(kLen / 1024)) return 4;
    if (locked != static_cast<long>(kLen / 1024)) return 5;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// pagemap: bit 63 for a present page, none for an untouched one, and no
// frame number for a reader without CAP_SYS_ADMIN (pagemap.rst); whole
// entries only (LTP mmap12 reads it).
TEST(Pagemap, PresentBitsWithoutFrames) {
  int status = RunInChild([] {
    char* m = MapAnon(2);
    if (m == nullptr) return 1;
    m[0] = 1;
    if (!DropEffective(CAP_SYS_ADMIN)) return 2;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0) return 3;
    uint64_t e[2] = {0, 0};
    const off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(m) / kPage * 8);
    if (pread(fd, e, sizeof(e), at) != static_cast<ssize_t>(sizeof(e))) return 4;
    if (!(e[0] & (1ULL << 63))) return 5;
    if ((e[0] & ((1ULL << 55) - 1)) != 0) return 6;  // no frame number
    if (e[0] & (1ULL << 61)) return 7;  // private anonymous: not file/shared
    if (e[1] & (1ULL << 63)) return 8;
    if (pread(fd, e, 4, at) != -1 || errno != EINVAL) return 9;
    if (pread(fd, e, 8, at + 1) != -1 || errno != EINVAL) return 10;
    if (lseek(fd, at, SEEK_SET) != at || read(fd, e, 8) != 8 || !(e[0] & (1ULL << 63))) return 11;
    close(fd);
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
