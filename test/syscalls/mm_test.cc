// brk, mmap (anonymous and file, private and shared), munmap, mprotect,
// mremap, madvise and msync.
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/mapping.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

Mapping MapAnon(size_t len, int prot = PROT_READ | PROT_WRITE,
                int flags = MAP_PRIVATE) {
  return Mapping(mmap(nullptr, len, prot, flags | MAP_ANONYMOUS, -1, 0), len);
}

// In a child: no core file, whatever the host's core_pattern does.
void NoCoreDumps() {
  struct rlimit zero = {0, 0};
  setrlimit(RLIMIT_CORE, &zero);
}

// Runs `fn` in a child and expects it to die of `sig`.
void ExpectKilledBy(int sig, const std::function<void()>& fn) {
  int status = RunInChild([&] {
    NoCoreDumps();
    fn();
    return 0;  // Survived: the test fails.
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), sig);
}

// A write the compiler cannot drop.
void Poke(char* p, char v) { *static_cast<volatile char*>(p) = v; }
char Peek(const char* p) { return *static_cast<const volatile char*>(p); }

// ---------------------------------------------------------------- brk

TEST(BrkTest, GrowWriteShrink) {
  uintptr_t cur = syscall(SYS_brk, 0);
  ASSERT_NE(cur, 0u);
  EXPECT_EQ(static_cast<uintptr_t>(syscall(SYS_brk, 0)), cur);
  uintptr_t want = cur + 4 * kPage;
  ASSERT_EQ(static_cast<uintptr_t>(syscall(SYS_brk, want)), want);
  char* p = reinterpret_cast<char*>(cur);
  // New heap memory is zero-filled and writable.
  for (size_t i = 0; i < 4 * kPage; i += kPage) EXPECT_EQ(Peek(p + i), 0);
  memset(p, 0x5a, 4 * kPage);
  EXPECT_EQ(Peek(p + 4 * kPage - 1), 0x5a);
  ASSERT_EQ(static_cast<uintptr_t>(syscall(SYS_brk, cur)), cur);
}

TEST(BrkTest, InvalidRequestReturnsCurrentBreak) {
  uintptr_t cur = syscall(SYS_brk, 0);
  // Below the start of the heap: refused by returning the current break.
  EXPECT_EQ(static_cast<uintptr_t>(syscall(SYS_brk, 4096)), cur);
  // Absurdly large: refused the same way.
  EXPECT_EQ(static_cast<uintptr_t>(syscall(SYS_brk, cur + (1ULL << 46))), cur);
}

// Linux's brk (mm/mmap.c) never fails: a break it cannot move to is answered
// with the current one. Values near the top of the address space must not
// wrap when rounded up to a page (brk(-1) used to unmap the whole heap).
TEST(BrkTest, OutOfRangeValuesReturnCurrentBreak) {
  int status = RunInChild([] {
    uintptr_t cur = syscall(SYS_brk, 0);
    const uintptr_t bad[] = {
        ~uintptr_t{0},                    // brk(-1)
        ~uintptr_t{0} - 4096,             // rounds up past the top
        uintptr_t{1} << 63,               // non-canonical
        uintptr_t{0x00007ffffffff000},    // the last user page
        uintptr_t{0x0000800000000000},    // TASK_SIZE
        1,                                // below the data segment
    };
    for (uintptr_t b : bad) {
      if (static_cast<uintptr_t>(syscall(SYS_brk, b)) != cur) return 1;
    }
    // The heap and the rest of the process are still there.
    if (static_cast<uintptr_t>(syscall(SYS_brk, 0)) != cur) return 2;
    uintptr_t want = cur + 4 * kPage;
    if (static_cast<uintptr_t>(syscall(SYS_brk, want)) != want) return 3;
    memset(reinterpret_cast<char*>(cur), 0x11, 4 * kPage);
    if (static_cast<uintptr_t>(syscall(SYS_brk, cur)) != cur) return 4;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// check_data_rlimit(): the heap plus the data segment may not grow past
// RLIMIT_DATA; the refused brk returns the current break. The check comes
// before the one that always allows shrinking, so under a limit the process
// already exceeds even a shrink is refused.
TEST(BrkTest, RlimitDataRefusesGrowth) {
  int status = RunInChild([] {
    uintptr_t cur = syscall(SYS_brk, 0);
    struct rlimit lim = {8 << 20, 8 << 20};
    if (setrlimit(RLIMIT_DATA, &lim) != 0) return 1;
    if (static_cast<uintptr_t>(syscall(SYS_brk, cur + (64 << 20))) != cur) return 2;
    if (static_cast<uintptr_t>(syscall(SYS_brk, cur + kPage)) != cur + kPage) return 3;
    if (static_cast<uintptr_t>(syscall(SYS_brk, cur)) != cur) return 4;
    lim = {0, 0};
    if (setrlimit(RLIMIT_DATA, &lim) != 0) return 5;
    if (static_cast<uintptr_t>(syscall(SYS_brk, cur + kPage)) != cur) return 6;
    if (static_cast<uintptr_t>(syscall(SYS_brk, cur - kPage)) != cur) return 7;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// may_expand_vm(): every private writable mapping (mm->data_vm), not only
// the heap, counts against RLIMIT_DATA; mmap, mprotect and mremap that
// would pass it are ENOMEM, and brk cannot grow into what mmap took.
// Shared, read-only and stack (MAP_GROWSDOWN) mappings do not count.
TEST(MmapTest, RlimitDataCountsPrivateWritableMappings) {
  int status = RunInChild([] {
    constexpr size_t kMiB = 1 << 20;
    struct rlimit lim = {64 * kMiB, 64 * kMiB};
    if (setrlimit(RLIMIT_DATA, &lim) != 0) return 1;
    auto map = [](size_t len, int prot, int flags) {
      return mmap(nullptr, len, prot, flags | MAP_ANONYMOUS, -1, 0);
    };
    // Past the limit: refused; not data: fine.
    if (map(128 * kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE) != MAP_FAILED || errno != ENOMEM)
      return 2;
    void* ro = map(128 * kMiB, PROT_READ, MAP_PRIVATE);
    if (ro == MAP_FAILED) return 3;
    void* shared = map(128 * kMiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE);
    if (shared == MAP_FAILED) return 4;
    void* stack = map(128 * kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_GROWSDOWN);
    if (stack == MAP_FAILED) return 5;
    // Read-only memory that turns writable becomes data.
    if (mprotect(ro, 128 * kMiB, PROT_READ | PROT_WRITE) != -1 || errno != ENOMEM) return 6;
    if (mprotect(ro, kMiB, PROT_READ | PROT_WRITE) != 0) return 7;
    // Growing data with mremap, in place or moved.
    void* small = map(kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE);
    if (small == MAP_FAILED) return 8;
    if (mremap(small, kMiB, 128 * kMiB, MREMAP_MAYMOVE) != MAP_FAILED || errno != ENOMEM)
      return 9;
    // Fill the limit with 1 MiB mappings: brk can then grow by less than
    // the limit leaves the heap on its own.
    int n = 0;
    while (map(kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE) != MAP_FAILED) {
      if (++n > 64) return 10;
    }
    if (errno != ENOMEM || n < 32) return 11;
    const uintptr_t cur = syscall(SYS_brk, 0);
    if (static_cast<uintptr_t>(syscall(SYS_brk, cur + 2 * kMiB)) != cur) return 12;
    // MAP_FIXED over data already counted adds nothing.
    if (mmap(small, kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
             0) != small)
      return 13;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// A soft limit of 0 falls back to the hard limit ("workaround for
// Valgrind" in may_expand_vm()).
TEST(MmapTest, RlimitDataZeroFallsBackToTheHardLimit) {
  int status = RunInChild([] {
    struct rlimit lim;
    if (getrlimit(RLIMIT_DATA, &lim) != 0) return 1;
    if (lim.rlim_max != RLIM_INFINITY) return 0;  // nothing to fall back to
    lim.rlim_cur = 0;
    if (setrlimit(RLIMIT_DATA, &lim) != 0) return 2;
    void* p = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 3;
    // A finite hard limit with a soft limit of 0 refuses.
    lim.rlim_max = 1 << 20;
    if (setrlimit(RLIMIT_DATA, &lim) != 0) return 4;
    p = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED || errno != ENOMEM) return 5;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(BrkTest, ShrunkMemoryIsGone) {
  uintptr_t cur = syscall(SYS_brk, 0);
  uintptr_t top = (cur + 2 * kPage + kPage - 1) & ~(kPage - 1);
  ASSERT_EQ(static_cast<uintptr_t>(syscall(SYS_brk, top)), top);
  ASSERT_EQ(static_cast<uintptr_t>(syscall(SYS_brk, top - kPage)), top - kPage);
  ExpectKilledBy(SIGSEGV,
                 [&] { Poke(reinterpret_cast<char*>(top - kPage), 1); });
  ASSERT_EQ(static_cast<uintptr_t>(syscall(SYS_brk, cur)), cur);
}

// ---------------------------------------------------------------- mmap anon

TEST(MmapTest, AnonymousPrivateIsZeroedAndWritable) {
  Mapping m = MapAnon(3 * kPage);
  ASSERT_TRUE(m.ok()) << ErrnoName(errno);
  EXPECT_EQ(m.addr() % kPage, 0u);
  for (size_t i = 0; i < 3 * kPage; i++) ASSERT_EQ(m.ptr()[i], 0) << i;
  memset(m.ptr(), 'a', 3 * kPage);
  EXPECT_EQ(m.ptr()[3 * kPage - 1], 'a');
}

TEST(MmapTest, LengthIsRoundedUpToPages) {
  Mapping m = MapAnon(1);
  ASSERT_TRUE(m.ok());
  Poke(m.ptr() + kPage - 1, 1);  // Same page: fine.
  EXPECT_EQ(Peek(m.ptr() + kPage - 1), 1);
}

TEST(MmapTest, AnonymousSharedIsVisibleAcrossFork) {
  Mapping m = MapAnon(kPage, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  strcpy(m.ptr(), "parent");
  int status = RunInChild([&] {
    if (strcmp(m.ptr(), "parent") != 0) return 1;
    strcpy(m.ptr(), "child");
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_STREQ(m.ptr(), "child");
}

TEST(MmapTest, AnonymousPrivateIsCopyOnWriteAcrossFork) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  strcpy(m.ptr(), "parent");
  int status = RunInChild([&] {
    if (strcmp(m.ptr(), "parent") != 0) return 1;
    strcpy(m.ptr(), "child");
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_STREQ(m.ptr(), "parent");
}

TEST(MmapTest, FixedReplacesExistingMapping) {
  Mapping m = MapAnon(2 * kPage);
  ASSERT_TRUE(m.ok());
  memset(m.ptr(), 'x', 2 * kPage);
  void* r = mmap(m.ptr() + kPage, kPage, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  ASSERT_EQ(r, m.ptr() + kPage) << ErrnoName(errno);
  EXPECT_EQ(m.ptr()[0], 'x');
  EXPECT_EQ(m.ptr()[kPage], 0);
}

TEST(MmapTest, FixedNoreplaceOverExistingIsEEXIST) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  void* r = mmap(m.ptr(), kPage, PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  EXPECT_EQ(r, MAP_FAILED);
  EXPECT_EQ(errno, EEXIST) << ErrnoName(errno);
}

TEST(MmapTest, InvalidArgumentsAreEINVAL) {
  auto expect_einval = [](void* addr, size_t len, int prot, int flags, int fd,
                          off_t off) {
    errno = 0;
    void* r = mmap(addr, len, prot, flags, fd, off);
    EXPECT_EQ(r, MAP_FAILED);
    EXPECT_EQ(errno, EINVAL)
        << ErrnoName(errno) << " len=" << len << " flags=" << flags;
    if (r != MAP_FAILED) munmap(r, len);
  };
  // Zero length.
  expect_einval(nullptr, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  // Neither MAP_PRIVATE nor MAP_SHARED.
  expect_einval(nullptr, kPage, PROT_READ, MAP_ANONYMOUS, -1, 0);
  // MAP_FIXED at an unaligned address.
  expect_einval(reinterpret_cast<void*>(0x10000001), kPage, PROT_READ,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  // Unaligned offset.
  expect_einval(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1);
}

TEST(MmapTest, FileWithBadFdIsEBADF) {
  void* r = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, -1, 0);
  EXPECT_EQ(r, MAP_FAILED);
  EXPECT_EQ(errno, EBADF) << ErrnoName(errno);
}

TEST(MmapTest, ProtNoneFaults) {
  Mapping m = MapAnon(kPage, PROT_NONE);
  ASSERT_TRUE(m.ok());
  ExpectKilledBy(SIGSEGV, [&] { Peek(m.ptr()); });
}

// ---------------------------------------------------------------- mmap file

class FileMmapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Path("f");
    contents_ = std::string(2 * kPage, 'F');
    contents_.replace(0, 5, "start");
    ASSERT_TRUE(WriteFile(path_, contents_));
    fd_.reset(open(path_.c_str(), O_RDWR));
    ASSERT_GE(fd_.get(), 0);
  }

  TempDir dir_;
  std::string path_;
  std::string contents_;
  FileDescriptor fd_;
};

TEST_F(FileMmapTest, PrivateMappingSeesFileButWritesStayPrivate) {
  Mapping m(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                 fd_.get(), 0),
            2 * kPage);
  ASSERT_TRUE(m.ok()) << ErrnoName(errno);
  EXPECT_EQ(std::string(m.ptr(), 2 * kPage), contents_);
  memcpy(m.ptr(), "PRIV", 4);
  EXPECT_EQ(ReadFile(path_), contents_);
}

TEST_F(FileMmapTest, SharedMappingWritesReachFile) {
  Mapping m(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED,
                 fd_.get(), 0),
            2 * kPage);
  ASSERT_TRUE(m.ok()) << ErrnoName(errno);
  memcpy(m.ptr() + kPage, "SHARED", 6);
  ASSERT_OK(msync(m.ptr(), 2 * kPage, MS_SYNC));
  std::string want = contents_;
  want.replace(kPage, 6, "SHARED");
  EXPECT_EQ(ReadFile(path_), want);
}

TEST_F(FileMmapTest, FileWritesAreVisibleInSharedMapping) {
  Mapping m(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd_.get(), 0), kPage);
  ASSERT_TRUE(m.ok()) << ErrnoName(errno);
  ASSERT_EQ(pwrite(fd_.get(), "NEW", 3, 10), 3);
  EXPECT_EQ(std::string(m.ptr() + 10, 3), "NEW");
}

TEST_F(FileMmapTest, SharedMappingVisibleToForkedChildWrites) {
  Mapping m(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0),
      kPage);
  ASSERT_TRUE(m.ok());
  int status = RunInChild([&] {
    memcpy(m.ptr(), "KID", 3);
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char buf[3];
  ASSERT_EQ(pread(fd_.get(), buf, 3, 0), 3);
  EXPECT_EQ(std::string(buf, 3), "KID");
}

TEST_F(FileMmapTest, OffsetMapping) {
  Mapping m(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, fd_.get(), kPage),
            kPage);
  ASSERT_TRUE(m.ok()) << ErrnoName(errno);
  EXPECT_EQ(m.ptr()[0], 'F');
}

TEST_F(FileMmapTest, TailOfLastPageIsZero) {
  ASSERT_OK(ftruncate(fd_.get(), 100));
  Mapping m(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, fd_.get(), 0), kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(std::string(m.ptr(), 5), "start");
  EXPECT_EQ(m.ptr()[100], 0);
  EXPECT_EQ(m.ptr()[kPage - 1], 0);
}

TEST_F(FileMmapTest, BeyondEndOfFileIsSIGBUS) {
  ASSERT_OK(ftruncate(fd_.get(), 100));
  Mapping m(mmap(nullptr, 2 * kPage, PROT_READ, MAP_SHARED, fd_.get(), 0),
            2 * kPage);
  ASSERT_TRUE(m.ok());
  ExpectKilledBy(SIGBUS, [&] { Peek(m.ptr() + kPage); });
}

// SIGBUS is catchable, its si_addr is the byte accessed, and a page past
// the end becomes readable once the file grows over it (without a new
// mmap): the kvm platform hides such pages from the guest after a SIGBUS
// and must show them again.
sigjmp_buf sigbus_jmp;
void* sigbus_addr;
int sigbus_code;
void OnSigbus(int, siginfo_t* info, void*) {
  sigbus_addr = info->si_addr;
  sigbus_code = info->si_code;
  siglongjmp(sigbus_jmp, 1);
}

TEST_F(FileMmapTest, SigbusPastEndIsCaughtThenFileGrows) {
  ASSERT_OK(ftruncate(fd_.get(), 100));
  Mapping m(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0),
            2 * kPage);
  ASSERT_TRUE(m.ok());
  int status = RunInChild([&] {
    struct sigaction sa = {};
    sa.sa_sigaction = OnSigbus;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGBUS, &sa, nullptr) != 0) return 1;
    if (sigsetjmp(sigbus_jmp, 1) == 0) {
      Peek(m.ptr() + kPage + 8);
      return 2;  // no SIGBUS
    }
    if (sigbus_addr != m.ptr() + kPage + 8) return 3;
    if (sigbus_code != BUS_ADRERR) return 4;
    if (ftruncate(fd_.get(), 2 * kPage) != 0) return 5;
    if (Peek(m.ptr() + kPage + 8) != 0) return 6;
    Poke(m.ptr() + kPage + 9, 'G');
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  char c = 0;
  ASSERT_EQ(pread(fd_.get(), &c, 1, kPage + 9), 1);
  EXPECT_EQ(c, 'G');
}

TEST_F(FileMmapTest, AccessModeChecks) {
  FileDescriptor ro(open(path_.c_str(), O_RDONLY));
  FileDescriptor wo(open(path_.c_str(), O_WRONLY));
  ASSERT_GE(ro.get(), 0);
  ASSERT_GE(wo.get(), 0);
  // Shared writable mapping of a read-only fd.
  EXPECT_EQ(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, ro.get(), 0),
      MAP_FAILED);
  EXPECT_EQ(errno, EACCES) << ErrnoName(errno);
  // A private writable mapping of a read-only fd is fine.
  Mapping priv(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro.get(), 0),
      kPage);
  EXPECT_TRUE(priv.ok()) << ErrnoName(errno);
  // Any mapping of a write-only fd.
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, wo.get(), 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EACCES) << ErrnoName(errno);
  // mprotect cannot add PROT_WRITE to a shared mapping of a read-only fd.
  Mapping shared(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, ro.get(), 0),
                 kPage);
  ASSERT_TRUE(shared.ok());
  EXPECT_ERRNO(EACCES, mprotect(shared.ptr(), kPage, PROT_READ | PROT_WRITE));
}

TEST_F(FileMmapTest, MappingADirectoryIsENODEV) {
  FileDescriptor d(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(d.get(), 0);
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, d.get(), 0),
            MAP_FAILED);
  EXPECT_EQ(errno, ENODEV) << ErrnoName(errno);
}

TEST_F(FileMmapTest, MappingSurvivesClose) {
  Mapping m(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd_.get(), 0), kPage);
  ASSERT_TRUE(m.ok());
  fd_.reset();
  EXPECT_EQ(std::string(m.ptr(), 5), "start");
}

TEST_F(FileMmapTest, MsyncErrors) {
  Mapping m(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0),
      kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EINVAL, msync(m.ptr(), kPage, MS_SYNC | MS_ASYNC));
  EXPECT_ERRNO(EINVAL, msync(m.ptr() + 1, kPage, MS_SYNC));
  EXPECT_OK(msync(m.ptr(), kPage, MS_ASYNC));
  EXPECT_OK(msync(m.ptr(), kPage, MS_INVALIDATE));
  void* hole = m.ptr();
  m.Reset(MAP_FAILED, 0);
  ASSERT_OK(munmap(hole, kPage));
  EXPECT_ERRNO(ENOMEM, msync(hole, kPage, MS_SYNC));
}

// ---------------------------------------------------------------- munmap

TEST(MunmapTest, UnmappedMemoryFaults) {
  Mapping m = MapAnon(2 * kPage);
  ASSERT_TRUE(m.ok());
  ASSERT_OK(munmap(m.ptr() + kPage, kPage));
  Poke(m.ptr(), 1);  // The first page is still there.
  ExpectKilledBy(SIGSEGV, [&] { Poke(m.ptr() + kPage, 1); });
  munmap(m.ptr(), kPage);
  m.Reset(MAP_FAILED, 0);
}

TEST(MunmapTest, Errors) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EINVAL, munmap(m.ptr() + 1, kPage));
  EXPECT_ERRNO(EINVAL, munmap(m.ptr(), 0));
}

TEST(MunmapTest, UnmappingAHoleSucceeds) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  void* p = m.ptr();
  m.Reset(MAP_FAILED, 0);
  ASSERT_OK(munmap(p, kPage));
  EXPECT_OK(munmap(p, kPage));
}

// ---------------------------------------------------------------- mprotect

TEST(MprotectTest, WriteToReadOnlyPageIsSIGSEGV) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  m.ptr()[0] = 'a';
  ASSERT_OK(mprotect(m.ptr(), kPage, PROT_READ));
  EXPECT_EQ(Peek(m.ptr()), 'a');  // Reading still works.
  ExpectKilledBy(SIGSEGV, [&] { Poke(m.ptr(), 'b'); });
  ASSERT_OK(mprotect(m.ptr(), kPage, PROT_READ | PROT_WRITE));
  Poke(m.ptr(), 'c');
  EXPECT_EQ(Peek(m.ptr()), 'c');
}

TEST(MprotectTest, PartOfAMapping) {
  Mapping m = MapAnon(3 * kPage);
  ASSERT_TRUE(m.ok());
  ASSERT_OK(mprotect(m.ptr() + kPage, kPage, PROT_NONE));
  Poke(m.ptr(), 1);
  Poke(m.ptr() + 2 * kPage, 1);
  ExpectKilledBy(SIGSEGV, [&] { Peek(m.ptr() + kPage); });
}

TEST(MprotectTest, Errors) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EINVAL, mprotect(m.ptr() + 1, kPage, PROT_READ));
  EXPECT_ERRNO(EINVAL, mprotect(m.ptr(), kPage, 0x1000));
  void* p = m.ptr();
  m.Reset(MAP_FAILED, 0);
  ASSERT_OK(munmap(p, kPage));
  EXPECT_ERRNO(ENOMEM, mprotect(p, kPage, PROT_READ));
}

// ---------------------------------------------------------------- mremap

// Two adjacent pages in separate VMAs: growing the first one in place is
// blocked by the second.
struct BlockedPage {
  BlockedPage() : m(MapAnon(2 * kPage)) {
    ok = m.ok() && mprotect(m.ptr() + kPage, kPage, PROT_READ) == 0;
  }
  Mapping m;
  bool ok = false;
};

TEST(MremapTest, GrowWithMaymoveKeepsContents) {
  BlockedPage b;
  ASSERT_TRUE(b.ok) << ErrnoName(errno);
  strcpy(b.m.ptr(), "keep me");
  void* r = mremap(b.m.ptr(), kPage, 4 * kPage, MREMAP_MAYMOVE);
  ASSERT_NE(r, MAP_FAILED) << ErrnoName(errno);
  Mapping moved(r, 4 * kPage);
  EXPECT_NE(r, b.m.ptr());
  EXPECT_STREQ(moved.ptr(), "keep me");
  EXPECT_EQ(moved.ptr()[4 * kPage - 1], 0);
  Poke(moved.ptr() + 4 * kPage - 1, 1);
  // The old first page is gone; the blocking page is untouched.
  ExpectKilledBy(SIGSEGV, [&] { Peek(b.m.ptr()); });
  EXPECT_EQ(Peek(b.m.ptr() + kPage), 0);
}

TEST(MremapTest, GrowInPlaceWithoutRoomIsENOMEM) {
  BlockedPage b;
  ASSERT_TRUE(b.ok) << ErrnoName(errno);
  EXPECT_EQ(mremap(b.m.ptr(), kPage, 2 * kPage, 0), MAP_FAILED);
  EXPECT_EQ(errno, ENOMEM) << ErrnoName(errno);
}

TEST(MremapTest, GrowInPlace) {
  // Reserve 4 pages, keep 1: the next 3 are free for growing in place.
  Mapping m = MapAnon(4 * kPage);
  ASSERT_TRUE(m.ok());
  ASSERT_OK(munmap(m.ptr() + kPage, 3 * kPage));
  m.ptr()[0] = 'g';
  void* r = mremap(m.ptr(), kPage, 4 * kPage, 0);
  ASSERT_EQ(r, m.ptr()) << ErrnoName(errno);
  EXPECT_EQ(m.ptr()[0], 'g');
  Poke(m.ptr() + 3 * kPage, 1);
}

TEST(MremapTest, Shrink) {
  Mapping m = MapAnon(3 * kPage);
  ASSERT_TRUE(m.ok());
  void* r = mremap(m.ptr(), 3 * kPage, kPage, 0);
  ASSERT_EQ(r, m.ptr()) << ErrnoName(errno);
  ExpectKilledBy(SIGSEGV, [&] { Poke(m.ptr() + kPage, 1); });
  m.Reset(r, kPage);
}

TEST(MremapTest, FixedMovesToAddress) {
  Mapping m = MapAnon(kPage);
  Mapping dst = MapAnon(2 * kPage);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(dst.ok());
  strcpy(m.ptr(), "moved");
  void* r =
      mremap(m.ptr(), kPage, kPage, MREMAP_MAYMOVE | MREMAP_FIXED, dst.ptr());
  ASSERT_EQ(r, dst.ptr()) << ErrnoName(errno);
  EXPECT_STREQ(dst.ptr(), "moved");
  // The old address is gone.
  ExpectKilledBy(SIGSEGV, [&] { Peek(m.ptr()); });
  m.Reset(MAP_FAILED, 0);
}

TEST(MremapTest, SharedAnonymousMoveKeepsSharing) {
  Mapping m = MapAnon(kPage, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  void* r = mremap(m.ptr(), kPage, 2 * kPage, MREMAP_MAYMOVE);
  ASSERT_NE(r, MAP_FAILED) << ErrnoName(errno);
  m.Reset(r, 2 * kPage);
  int status = RunInChild([&] {
    m.ptr()[0] = 'S';
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(m.ptr()[0], 'S');
  // The shared memory object keeps its size of one page: the grown part is
  // past its end.
  ExpectKilledBy(SIGBUS, [&] { Poke(m.ptr() + kPage, 1); });
}

TEST(MremapTest, Errors) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(mremap(m.ptr() + 1, kPage, kPage, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(mremap(m.ptr(), kPage, 0, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  // MREMAP_FIXED without MREMAP_MAYMOVE.
  EXPECT_EQ(mremap(m.ptr(), kPage, kPage, MREMAP_FIXED, m.ptr() + 8 * kPage),
            MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(mremap(m.ptr(), kPage, kPage, 0x80), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  // Nothing mapped there.
  void* p = m.ptr();
  m.Reset(MAP_FAILED, 0);
  ASSERT_OK(munmap(p, kPage));
  EXPECT_EQ(mremap(p, kPage, 2 * kPage, MREMAP_MAYMOVE), MAP_FAILED);
  EXPECT_EQ(errno, EFAULT) << ErrnoName(errno);
}

// ---------------------------------------------------------------- madvise

TEST(MadviseTest, DontneedZeroFillsAnonymousPrivate) {
  Mapping m = MapAnon(2 * kPage);
  ASSERT_TRUE(m.ok());
  memset(m.ptr(), 'x', 2 * kPage);
  ASSERT_OK(madvise(m.ptr(), kPage, MADV_DONTNEED));
  EXPECT_EQ(m.ptr()[0], 0);
  EXPECT_EQ(m.ptr()[kPage - 1], 0);
  EXPECT_EQ(m.ptr()[kPage], 'x');
}

TEST(MadviseTest, DontneedKeepsAnonymousShared) {
  Mapping m = MapAnon(kPage, PROT_READ | PROT_WRITE, MAP_SHARED);
  ASSERT_TRUE(m.ok());
  m.ptr()[0] = 's';
  ASSERT_OK(madvise(m.ptr(), kPage, MADV_DONTNEED));
  EXPECT_EQ(m.ptr()[0], 's');
}

TEST(MadviseTest, DontneedRereadsPrivateFileMapping) {
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Path("f"), std::string(kPage, 'o')));
  FileDescriptor fd(open(dir.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  Mapping m(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd.get(), 0),
      kPage);
  ASSERT_TRUE(m.ok());
  m.ptr()[0] = 'n';
  ASSERT_OK(madvise(m.ptr(), kPage, MADV_DONTNEED));
  EXPECT_EQ(m.ptr()[0], 'o');
}

TEST(MadviseTest, Errors) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EINVAL, madvise(m.ptr() + 1, kPage, MADV_DONTNEED));
  EXPECT_ERRNO(EINVAL, madvise(m.ptr(), kPage, 12345));
  EXPECT_OK(madvise(m.ptr(), kPage, MADV_NORMAL));
  EXPECT_OK(madvise(m.ptr(), kPage, MADV_WILLNEED));
  void* p = m.ptr();
  m.Reset(MAP_FAILED, 0);
  ASSERT_OK(munmap(p, kPage));
  EXPECT_ERRNO(ENOMEM, madvise(p, kPage, MADV_DONTNEED));
}

// The child of fork() runs `check` and exits with its result (0 = ok).
int InForkedChild(int (*check)(char*), char* p) {
  pid_t pid = fork();
  if (pid == 0) _exit(check(p));
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

// mincore(2) says ENOMEM for a page no mapping covers.
int Unmapped(char* p) {
  unsigned char vec;
  return mincore(p, kPage, &vec) == -1 && errno == ENOMEM ? 0 : 1;
}
int ZeroFilled(char* p) { return Peek(p) == 0 && Peek(p + kPage) == 0 ? 0 : 1; }
int Kept(char* p) { return Peek(p) == 0x11 && Peek(p + kPage) == 0x22 ? 0 : 1; }

TEST(MadviseTest, DontforkLeavesTheRangeOutOfTheChild) {
  Mapping m = MapAnon(2 * kPage);
  ASSERT_TRUE(m.ok());
  Poke(m.ptr(), 0x11);
  Poke(m.ptr() + kPage, 0x22);
  ASSERT_OK(madvise(m.ptr(), 2 * kPage, MADV_DONTFORK));
  EXPECT_EQ(InForkedChild(Unmapped, m.ptr()), 0);
  EXPECT_EQ(InForkedChild(Unmapped, m.ptr() + kPage), 0);
  EXPECT_EQ(Kept(m.ptr()), 0);  // the parent keeps it
  // The child may map something new there.
  EXPECT_EQ(InForkedChild(
                +[](char* p) {
                  void* q = mmap(p, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
                  return q == p ? 0 : 1;
                },
                m.ptr()),
            0);
  ASSERT_OK(madvise(m.ptr(), 2 * kPage, MADV_DOFORK));
  EXPECT_EQ(InForkedChild(Kept, m.ptr()), 0);
}

TEST(MadviseTest, DontforkOnPartOfAMapping) {
  Mapping m = MapAnon(2 * kPage);
  ASSERT_TRUE(m.ok());
  Poke(m.ptr(), 0x11);
  Poke(m.ptr() + kPage, 0x22);
  ASSERT_OK(madvise(m.ptr() + kPage, kPage, MADV_DONTFORK));
  EXPECT_EQ(InForkedChild(+[](char* p) { return Peek(p) == 0x11 ? Unmapped(p + kPage) : 2; },
                          m.ptr()),
            0);
}

TEST(MadviseTest, WipeonforkZeroFillsTheChildOnly) {
  Mapping m = MapAnon(2 * kPage);
  ASSERT_TRUE(m.ok());
  Poke(m.ptr(), 0x11);
  Poke(m.ptr() + kPage, 0x22);
  ASSERT_OK(madvise(m.ptr(), 2 * kPage, MADV_WIPEONFORK));
  EXPECT_EQ(InForkedChild(ZeroFilled, m.ptr()), 0);
  EXPECT_EQ(Kept(m.ptr()), 0);
  ASSERT_OK(madvise(m.ptr(), 2 * kPage, MADV_KEEPONFORK));
  EXPECT_EQ(InForkedChild(Kept, m.ptr()), 0);
}

TEST(MadviseTest, WipeonforkErrors) {
  Mapping shared(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0),
                 kPage);
  ASSERT_TRUE(shared.ok());
  EXPECT_ERRNO(EINVAL, madvise(shared.ptr(), kPage, MADV_WIPEONFORK));
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  void* p = m.ptr();
  m.Reset(MAP_FAILED, 0);
  ASSERT_OK(munmap(p, kPage));
  EXPECT_ERRNO(ENOMEM, madvise(p, kPage, MADV_DONTFORK));
  EXPECT_ERRNO(ENOMEM, madvise(p, kPage, MADV_WIPEONFORK));
}

// Past the end of the user address space (x86-64 TASK_SIZE; in the sandbox
// the user range ends lower, below the platform's stub, and the same rules
// hold there): every call that changes mappings refuses, as Linux does for
// addresses above TASK_SIZE, and no syscall copies to or from there.
TEST(UserTopTest, RangesPastTheEndAreRefused) {
  char* const top = reinterpret_cast<char*>(0x7ffffffff000UL);  // TASK_SIZE
  EXPECT_EQ(MAP_FAILED, mmap(top, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(MAP_FAILED,
            mmap(top, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
  EXPECT_EQ(errno, ENOMEM);
  // A hint there is only a hint: the mapping lands in the user range.
  void* p = mmap(top, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_LE(reinterpret_cast<uintptr_t>(p) + kPage, reinterpret_cast<uintptr_t>(top));
  EXPECT_ERRNO(EINVAL, munmap(top, kPage));
  EXPECT_ERRNO(ENOMEM, mprotect(top, kPage, PROT_READ | PROT_WRITE));
  EXPECT_ERRNO(ENOMEM, madvise(top, kPage, MADV_DONTNEED));
  EXPECT_ERRNO(ENOMEM, madvise(top, kPage, MADV_DONTFORK));
  EXPECT_ERRNO(ENOMEM, msync(top, kPage, MS_SYNC));
  EXPECT_EQ(MAP_FAILED, mremap(p, kPage, kPage, MREMAP_MAYMOVE | MREMAP_FIXED, top));
  EXPECT_EQ(errno, EINVAL);
  int fds[2];
  ASSERT_OK(pipe(fds));
  ASSERT_EQ(write(fds[1], "ab", 2), 2);
  EXPECT_ERRNO(EFAULT, read(fds[0], top, 2));
  EXPECT_ERRNO(EFAULT, write(fds[1], top, 1));
  close(fds[0]);
  close(fds[1]);
  ASSERT_OK(munmap(p, kPage));
}

// A range from the guest's own mapping to past the end of the user range:
// madvise and msync fail with ENOMEM (pages no VMA covers). Only harmless
// requests: Linux applies them to the mapped part before it fails, and so
// may the sandbox (mprotect is left out: Linux would change the mappings
// up to the first hole, the stack among them).
TEST(UserTopTest, MadviseAndMsyncAcrossTheEndAreENOMEM) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  const uintptr_t top = 0x7ffffffff000UL;  // TASK_SIZE
  const size_t len = top - m.addr() + kPage;
  EXPECT_ERRNO(ENOMEM, madvise(m.ptr(), len, MADV_NORMAL));
  EXPECT_ERRNO(ENOMEM, msync(m.ptr(), len, MS_ASYNC));
  Poke(m.ptr(), 7);
  EXPECT_EQ(Peek(m.ptr()), 7);
}

}  // namespace
}  // namespace syscall_test
