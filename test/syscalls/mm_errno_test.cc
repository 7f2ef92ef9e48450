// madvise(2), msync(2) and mprotect(2): the errors Linux derives from the
// VMAs of the range (a locked VMA, a shared mapping of a file not open for
// writing), as LTP's madvise02, msync03 and mprotect01 check them.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/mapping.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

const size_t kPage = sysconf(_SC_PAGESIZE);

Mapping MapAnon(size_t len, int flags = MAP_PRIVATE) {
  return Mapping(mmap(nullptr, len, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0), len);
}

char Peek(const char* p) { return *static_cast<const volatile char*>(p); }

// ---------------------------------------------------------------- madvise

// madvise_dontneed_free_valid_vma(): a locked VMA keeps its pages
// (EINVAL); MADV_DONTNEED_LOCKED (Linux 5.18) drops them anyway.
TEST(MadviseLockedTest, DontneedAndFreeOfALockedRangeAreEINVAL) {
  Mapping m = MapAnon(2 * kPage);
  ASSERT_TRUE(m.ok());
  memset(m.ptr(), 0x5a, 2 * kPage);
  ASSERT_OK(mlock(m.ptr(), kPage));
  EXPECT_ERRNO(EINVAL, madvise(m.ptr(), kPage, MADV_DONTNEED));
  EXPECT_ERRNO(EINVAL, madvise(m.ptr(), 2 * kPage, MADV_DONTNEED));
  EXPECT_ERRNO(EINVAL, madvise(m.ptr(), kPage, MADV_FREE));
  EXPECT_EQ(Peek(m.ptr()), 0x5a);
  // The unlocked page after it is not refused.
  EXPECT_OK(madvise(m.ptr() + kPage, kPage, MADV_DONTNEED));
  EXPECT_EQ(Peek(m.ptr() + kPage), 0);
  EXPECT_OK(madvise(m.ptr(), kPage, MADV_DONTNEED_LOCKED));
  EXPECT_EQ(Peek(m.ptr()), 0);
  ASSERT_OK(munlock(m.ptr(), kPage));
  EXPECT_OK(madvise(m.ptr(), 2 * kPage, MADV_DONTNEED));
}

TEST(MadviseLockedTest, MapLockedMappingRefusesDontneed) {
  Mapping m(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED,
                 -1, 0),
            kPage);
  ASSERT_TRUE(m.ok());
  m.ptr()[0] = 3;
  EXPECT_ERRNO(EINVAL, madvise(m.ptr(), kPage, MADV_DONTNEED));
  EXPECT_EQ(Peek(m.ptr()), 3);
}

// do_madvise() checks the advice before the range: an unknown one is
// EINVAL even for an empty range, a known one succeeds on it.
TEST(MadviseLockedTest, UnknownAdviceIsEINVALEvenForAnEmptyRange) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EINVAL, madvise(m.ptr(), 0, 1212));
  EXPECT_OK(madvise(m.ptr(), 0, MADV_NORMAL));
  EXPECT_OK(madvise(m.ptr(), 0, MADV_COLD));
}

// ---------------------------------------------------------------- msync

// do_msync(): MS_INVALIDATE of a locked VMA is EBUSY.
TEST(MsyncLockedTest, InvalidateOfALockedMappingIsEBUSY) {
  TempDir dir;
  const std::string path = dir.Path("f");
  ASSERT_TRUE(WriteFile(path, std::string(kPage, 'a')));
  FileDescriptor fd(open(path.c_str(), O_RDWR));
  ASSERT_GE(fd.get(), 0);
  Mapping m(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED, fd.get(), 0),
            kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EBUSY, msync(m.ptr(), kPage, MS_INVALIDATE));
  EXPECT_ERRNO(EBUSY, msync(m.ptr(), kPage, MS_SYNC | MS_INVALIDATE));
  m.ptr()[0] = 'b';
  EXPECT_OK(msync(m.ptr(), kPage, MS_SYNC));
  EXPECT_EQ(ReadFile(path)[0], 'b');
  EXPECT_OK(msync(m.ptr(), kPage, MS_ASYNC));

  Mapping anon = MapAnon(kPage);
  ASSERT_TRUE(anon.ok());
  EXPECT_OK(msync(anon.ptr(), kPage, MS_INVALIDATE));
  ASSERT_OK(mlock(anon.ptr(), kPage));
  EXPECT_ERRNO(EBUSY, msync(anon.ptr(), kPage, MS_INVALIDATE));
  ASSERT_OK(munlock(anon.ptr(), kPage));
  EXPECT_OK(msync(anon.ptr(), kPage, MS_INVALIDATE));
}

TEST(MsyncLockedTest, FlagsOutsideTheThreeAreEINVAL) {
  Mapping m = MapAnon(kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EINVAL, msync(m.ptr(), kPage, 8));
  EXPECT_ERRNO(EINVAL, msync(m.ptr(), kPage, MS_INVALIDATE | 0x10));
  EXPECT_ERRNO(EINVAL, msync(m.ptr(), kPage, -1));
}

// A hole in the range: skipped and ENOMEM at the end, except that a
// plain MS_ASYNC stops at it. The mapped part after the hole is still
// walked: MS_INVALIDATE of a locked VMA there is EBUSY.
TEST(MsyncLockedTest, HoleThenLockedVmaIsEBUSY) {
  Mapping m = MapAnon(3 * kPage);
  ASSERT_TRUE(m.ok());
  ASSERT_OK(munmap(m.ptr() + kPage, kPage));
  ASSERT_OK(mlock(m.ptr() + 2 * kPage, kPage));
  EXPECT_ERRNO(ENOMEM, msync(m.ptr(), 3 * kPage, MS_ASYNC));
  EXPECT_ERRNO(ENOMEM, msync(m.ptr(), 3 * kPage, MS_SYNC));
  EXPECT_ERRNO(EBUSY, msync(m.ptr(), 3 * kPage, MS_INVALIDATE));
  EXPECT_ERRNO(ENOMEM, msync(m.ptr(), 2 * kPage, MS_INVALIDATE));
}

// ---------------------------------------------------------------- mprotect

// do_mmap(): a shared mapping of /dev/zero open read-only has no
// VM_MAYWRITE, so mprotect(PROT_WRITE) is EACCES, as for any file.
TEST(MprotectMayWriteTest, SharedDevZeroOpenReadOnlyStaysReadOnly) {
  FileDescriptor ro(open("/dev/zero", O_RDONLY));
  ASSERT_GE(ro.get(), 0);
  Mapping m(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, ro.get(), 0), kPage);
  ASSERT_TRUE(m.ok());
  EXPECT_ERRNO(EACCES, mprotect(m.ptr(), kPage, PROT_WRITE));
  EXPECT_ERRNO(EACCES, mprotect(m.ptr(), kPage, PROT_READ | PROT_WRITE));
  EXPECT_OK(mprotect(m.ptr(), kPage, PROT_NONE));
  EXPECT_OK(mprotect(m.ptr(), kPage, PROT_READ));
  EXPECT_EQ(Peek(m.ptr()), 0);

  // A private mapping of it, and a shared one of /dev/zero open for
  // writing, may become writable.
  Mapping priv(mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE, ro.get(), 0), kPage);
  ASSERT_TRUE(priv.ok());
  EXPECT_OK(mprotect(priv.ptr(), kPage, PROT_READ | PROT_WRITE));
  FileDescriptor rw(open("/dev/zero", O_RDWR));
  ASSERT_GE(rw.get(), 0);
  Mapping shared(mmap(nullptr, kPage, PROT_READ, MAP_SHARED, rw.get(), 0), kPage);
  ASSERT_TRUE(shared.ok());
  EXPECT_OK(mprotect(shared.ptr(), kPage, PROT_READ | PROT_WRITE));
  shared.ptr()[0] = 1;
  EXPECT_EQ(Peek(shared.ptr()), 1);
}

}  // namespace
}  // namespace syscall_test
