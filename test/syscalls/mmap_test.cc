// mmap(2) of /dev/zero, flag and length checks of mmap/mprotect/madvise,
// and /proc/self/statm.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr size_t kPage = 4096;

// mmap_zero(): a private mapping of /dev/zero is anonymous memory.
TEST(MmapTest, DevZeroPrivate) {
  FileDescriptor z(open("/dev/zero", O_RDWR));
  ASSERT_GE(z.get(), 0);
  auto* p = static_cast<char*>(
      mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, z.get(), 0));
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[kPage], 0);
  p[0] = 1;
  // A child's writes stay its own.
  int status = RunInChild([p] {
    p[1] = 7;
    return p[0] == 1 ? 0 : 1;
  });
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(p[1], 0);
  EXPECT_OK(munmap(p, 2 * kPage));
}

// A shared mapping of /dev/zero is a shmem object: a forked child's writes
// show in the parent.
TEST(MmapTest, DevZeroShared) {
  FileDescriptor z(open("/dev/zero", O_RDWR));
  ASSERT_GE(z.get(), 0);
  auto* p = static_cast<char*>(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, z.get(), 0));
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  EXPECT_EQ(p[0], 0);
  p[0] = 5;
  int status = RunInChild([p] {
    p[1] = 7;
    return p[0] == 5 ? 0 : 1;
  });
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(p[1], 7);
  EXPECT_OK(munmap(p, kPage));
}

// MAP_SHARED_VALIDATE (MAP_PRIVATE|MAP_SHARED) is for files; anonymous
// memory is EINVAL. A mapping type of 0 is EINVAL too.
TEST(MmapTest, SharedValidateNeedsAFile) {
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_ANONYMOUS, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
}

// On a file, MAP_SHARED_VALIDATE refuses flags it does not know with
// EOPNOTSUPP (LTP's mmap20); a zero length is EINVAL before the file's
// open mode is looked at (mmap06).
TEST(MmapTest, SharedValidateRefusesUnknownFlags) {
  TempDir dir;
  int fd = open(dir.Path("f").c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_OK(ftruncate(fd, kPage));
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_SHARED_VALIDATE | (1 << 10), fd, 0), MAP_FAILED);
  EXPECT_EQ(errno, EOPNOTSUPP);
  void* p = mmap(nullptr, kPage, PROT_READ, MAP_SHARED_VALIDATE | MAP_POPULATE, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << ErrnoName(errno);
  EXPECT_OK(munmap(p, kPage));
  int wronly = open(dir.Path("f").c_str(), O_WRONLY);
  ASSERT_GE(wronly, 0);
  EXPECT_EQ(mmap(nullptr, 0, PROT_READ, MAP_SHARED, wronly, 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, wronly, 0), MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
  close(wronly);
  close(fd);
}

// do_mprotect_pkey(): a length that wraps when page-aligned is ENOMEM;
// madvise's is EINVAL.
TEST(MmapTest, LengthOverflow) {
  void* p = mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  EXPECT_ERRNO(ENOMEM, mprotect(p, static_cast<size_t>(-1), PROT_READ));
  EXPECT_ERRNO(ENOMEM, mprotect(p, static_cast<size_t>(-kPage), PROT_READ));
  EXPECT_ERRNO(EINVAL, madvise(p, static_cast<size_t>(-1), MADV_NORMAL));
  EXPECT_ERRNO(EINVAL, madvise(p, static_cast<size_t>(-kPage), MADV_DONTNEED));
  EXPECT_OK(mprotect(p, 0, PROT_READ));
  EXPECT_OK(munmap(p, kPage));
}

// A /proc/meminfo field's number ("HugePages_Free:  0" -> 0), or -1.
long MeminfoValue(const std::string& name) {
  std::istringstream in(ReadFile("/proc/meminfo"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) return std::stol(line.substr(name.size() + 1));
  }
  return -1;
}

// With no huge pages in the hugetlb pool (vm.nr_hugepages = 0, as the
// sandbox has it) MAP_HUGETLB's reservation fails with ENOMEM
// (hugetlb_reserve_pages()); PostgreSQL's huge_pages=try falls back on that.
// A file that is not on hugetlbfs and a page size without an hstate are
// EINVAL (ksys_mmap_pgoff()). MAP_NORESERVE reserves nothing.
TEST(MmapTest, HugetlbWithAnEmptyPool) {
  ASSERT_GE(MeminfoValue("HugePages_Total"), 0);
  if (MeminfoValue("HugePages_Free") != 0) GTEST_SKIP() << "this host has free huge pages";
  constexpr size_t kHuge = 2 << 20;
  for (int type : {MAP_PRIVATE, MAP_SHARED}) {
    EXPECT_EQ(mmap(nullptr, kHuge, PROT_READ | PROT_WRITE, type | MAP_ANONYMOUS | MAP_HUGETLB,
                   -1, 0),
              MAP_FAILED);
    EXPECT_EQ(errno, ENOMEM) << ErrnoName(errno);
    EXPECT_EQ(mmap(nullptr, kHuge, PROT_READ,
                   type | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), -1, 0),
              MAP_FAILED);
    EXPECT_EQ(errno, ENOMEM) << ErrnoName(errno);
  }
  EXPECT_EQ(mmap(nullptr, kHuge, PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (16 << MAP_HUGE_SHIFT), -1, 0),
            MAP_FAILED);
  EXPECT_EQ(errno, EINVAL) << ErrnoName(errno);
  TempDir dir;
  FileDescriptor fd(open(dir.Path("f").c_str(), O_CREAT | O_RDWR, 0600));
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(ftruncate(fd.get(), kHuge), 0);
  EXPECT_EQ(mmap(nullptr, kHuge, PROT_READ, MAP_SHARED | MAP_HUGETLB, fd.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EINVAL) << ErrnoName(errno);
  void* p = mmap(nullptr, kHuge, PROT_READ,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_NORESERVE, -1, 0);
  EXPECT_NE(p, MAP_FAILED) << ErrnoName(errno);
  if (p != MAP_FAILED) munmap(p, kHuge);
}

// x86-64: MAP_32BIT places the mapping in the first 2 GiB (at or above 1 GiB).
TEST(MmapTest, Map32Bit) {
  for (int i = 0; i < 4; ++i) {
    void* p = mmap(nullptr, 16 * kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    auto a = reinterpret_cast<uintptr_t>(p);
    EXPECT_GE(a, uintptr_t{0x40000000});
    EXPECT_LE(a + 16 * kPage, uintptr_t{0x80000000});
    static_cast<char*>(p)[0] = 1;
  }
}

struct Statm {
  long size = -1, resident = -1, shared = -1, text = -1, lib = -1, data = -1, dt = -1;
};

Statm ReadStatm() {
  std::ifstream in("/proc/self/statm");
  Statm s;
  in >> s.size >> s.resident >> s.shared >> s.text >> s.lib >> s.data >> s.dt;
  return s;
}

// proc_pid_statm(): seven page counts; lib and dt are always 0.
TEST(MmapTest, ProcSelfStatm) {
  Statm a = ReadStatm();
  ASSERT_GT(a.size, 0);
  EXPECT_GT(a.resident, 0);
  EXPECT_LE(a.resident, a.size);
  EXPECT_LE(a.shared, a.resident);
  EXPECT_GT(a.text, 0);
  EXPECT_EQ(a.lib, 0);
  EXPECT_GT(a.data, 0);
  EXPECT_EQ(a.dt, 0);
  // 256 more pages of private writable memory: size and data grow by them,
  // and touching them makes them resident.
  constexpr long kPages = 256;
  auto* p = static_cast<char*>(mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  for (long i = 0; i < kPages; ++i) p[i * kPage] = 1;
  Statm b = ReadStatm();
  EXPECT_EQ(b.size - a.size, kPages);
  EXPECT_EQ(b.data - a.data, kPages);
  EXPECT_GE(b.resident - a.resident, kPages * 9 / 10);
  EXPECT_EQ(b.text, a.text);
  munmap(p, kPages * kPage);
}

// A private read-only mapping of a host file that others may not read
// (/etc/shadow is 0640 root:shadow on Debian), as root: it shows the
// file's bytes. Under seedsc's default platform (systrap with patching)
// such a mapping once hung its task for good (a lock taken twice).
TEST(MmapTest, PrivateMapOfAFileOthersMayNotRead) {
  struct stat st;
  if (getuid() != 0) GTEST_SKIP() << "needs uid 0";
  if (stat("/etc/shadow", &st) != 0 || (st.st_mode & S_IROTH)) {
    GTEST_SKIP() << "no /etc/shadow closed to others here";
  }
  FileDescriptor f(open("/etc/shadow", O_RDONLY));
  ASSERT_GE(f.get(), 0) << strerror(errno);
  char want[64] = {};
  const ssize_t n = pread(f.get(), want, sizeof(want), 0);
  ASSERT_GT(n, 0);
  auto* p = static_cast<char*>(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, f.get(), 0));
  ASSERT_NE(p, MAP_FAILED) << strerror(errno);
  // Compared without printing: the bytes are the host's password hashes.
  EXPECT_TRUE(memcmp(p, want, n) == 0) << "the mapping differs from the file's first " << n
                                       << " bytes";
  EXPECT_OK(munmap(p, kPage));
}

}  // namespace
}  // namespace syscall_test
