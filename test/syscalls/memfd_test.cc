// memfd file seals: MFD_ALLOW_SEALING, fcntl F_ADD_SEALS/F_GET_SEALS, and
// their enforcement on write, ftruncate, fallocate and shared writable
// mappings (memfd_create(2), fcntl(2) "File Sealing"); fcntl F_NOTIFY.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

TEST(MemfdSealTest, WithoutAllowSealingTheSealIsSealed) {
  FileDescriptor m(memfd_create("plain", MFD_CLOEXEC));
  ASSERT_GE(m.get(), 0);
  EXPECT_EQ(fcntl(m.get(), F_GET_SEALS), F_SEAL_SEAL);
  EXPECT_ERRNO(EPERM, fcntl(m.get(), F_ADD_SEALS, F_SEAL_WRITE));
  EXPECT_EQ(write(m.get(), "abc", 3), 3);
}

TEST(MemfdSealTest, NotAMemfd) {
  int p[2];
  ASSERT_OK(pipe(p));
  EXPECT_ERRNO(EINVAL, fcntl(p[0], F_GET_SEALS));
  EXPECT_ERRNO(EINVAL, fcntl(p[1], F_ADD_SEALS, F_SEAL_SEAL));
  close(p[0]);
  close(p[1]);
}

TEST(MemfdSealTest, AddAndGet) {
  FileDescriptor m(memfd_create("s", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_GE(m.get(), 0);
  EXPECT_EQ(fcntl(m.get(), F_GET_SEALS), 0);
  EXPECT_ERRNO(EINVAL, fcntl(m.get(), F_ADD_SEALS, 0x8000));
  ASSERT_OK(fcntl(m.get(), F_ADD_SEALS, F_SEAL_SHRINK));
  ASSERT_OK(fcntl(m.get(), F_ADD_SEALS, F_SEAL_GROW));
  EXPECT_EQ(fcntl(m.get(), F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW);
  ASSERT_OK(fcntl(m.get(), F_ADD_SEALS, F_SEAL_SEAL));
  EXPECT_ERRNO(EPERM, fcntl(m.get(), F_ADD_SEALS, F_SEAL_WRITE));
  EXPECT_EQ(fcntl(m.get(), F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
}

TEST(MemfdSealTest, AddNeedsAWritableFile) {
  FileDescriptor m(memfd_create("ro", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_GE(m.get(), 0);
  std::string path = "/proc/self/fd/" + std::to_string(m.get());
  FileDescriptor ro(open(path.c_str(), O_RDONLY));
  ASSERT_GE(ro.get(), 0) << ErrnoName(errno);
  EXPECT_ERRNO(EPERM, fcntl(ro.get(), F_ADD_SEALS, F_SEAL_GROW));
  EXPECT_EQ(fcntl(ro.get(), F_GET_SEALS), 0);
  // Seals belong to the file: another open of it sees them.
  ASSERT_OK(fcntl(m.get(), F_ADD_SEALS, F_SEAL_GROW));
  EXPECT_EQ(fcntl(ro.get(), F_GET_SEALS), F_SEAL_GROW);
}

TEST(MemfdSealTest, ShrinkAndGrow) {
  FileDescriptor m(memfd_create("sg", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_GE(m.get(), 0);
  ASSERT_OK(ftruncate(m.get(), 8192));
  ASSERT_OK(fcntl(m.get(), F_ADD_SEALS, F_SEAL_SHRINK));
  EXPECT_ERRNO(EPERM, ftruncate(m.get(), 4096));
  EXPECT_OK(ftruncate(m.get(), 16384));
  ASSERT_OK(fcntl(m.get(), F_ADD_SEALS, F_SEAL_GROW));
  EXPECT_ERRNO(EPERM, ftruncate(m.get(), 32768));
  EXPECT_OK(ftruncate(m.get(), 16384));  // the same size is fine
  // Writes inside the file still work; past its end they would grow it.
  EXPECT_EQ(pwrite(m.get(), "x", 1, 100), 1);
  EXPECT_ERRNO(EPERM, pwrite(m.get(), "x", 1, 16384));
  EXPECT_ERRNO(EPERM, fallocate(m.get(), 0, 16000, 4096));
}

TEST(MemfdSealTest, WriteSeal) {
  FileDescriptor m(memfd_create("w", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_GE(m.get(), 0);
  ASSERT_OK(ftruncate(m.get(), 4096));
  // A shared writable mapping blocks F_SEAL_WRITE (EBUSY) until unmapped.
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m.get(), 0);
  ASSERT_NE(p, MAP_FAILED) << ErrnoName(errno);
  static_cast<char*>(p)[0] = 'a';
  EXPECT_ERRNO(EBUSY, fcntl(m.get(), F_ADD_SEALS, F_SEAL_WRITE));
  ASSERT_OK(munmap(p, 4096));
  ASSERT_OK(fcntl(m.get(), F_ADD_SEALS, F_SEAL_WRITE));

  EXPECT_ERRNO(EPERM, write(m.get(), "b", 1));
  EXPECT_ERRNO(EPERM, pwrite(m.get(), "b", 1, 0));
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  // Reading, and private or read-only mappings, still work.
  char c = 0;
  EXPECT_EQ(pread(m.get(), &c, 1, 0), 1);
  EXPECT_EQ(c, 'a');
  void* ro = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, m.get(), 0);
  ASSERT_NE(ro, MAP_FAILED);
  EXPECT_EQ(static_cast<char*>(ro)[0], 'a');
  // ...but a read-only shared mapping cannot become writable.
  EXPECT_ERRNO(EACCES, mprotect(ro, 4096, PROT_READ | PROT_WRITE));
  munmap(ro, 4096);
  void* priv = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, m.get(), 0);
  ASSERT_NE(priv, MAP_FAILED);
  static_cast<char*>(priv)[0] = 'z';  // copy-on-write, the file keeps 'a'
  EXPECT_EQ(pread(m.get(), &c, 1, 0), 1);
  EXPECT_EQ(c, 'a');
  munmap(priv, 4096);
}

TEST(MemfdSealTest, FutureWriteKeepsExistingMappings) {
  FileDescriptor m(memfd_create("fw", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_GE(m.get(), 0);
  ASSERT_OK(ftruncate(m.get(), 4096));
  char* p = static_cast<char*>(
      mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m.get(), 0));
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_OK(fcntl(m.get(), F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
  p[0] = 'q';  // the mapping made before the seal still writes
  char c = 0;
  EXPECT_EQ(pread(m.get(), &c, 1, 0), 1);
  EXPECT_EQ(c, 'q');
  EXPECT_ERRNO(EPERM, write(m.get(), "b", 1));
  EXPECT_EQ(mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m.get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  munmap(p, 4096);
}

// Not about seals, but fcntl's other odd command: F_NOTIFY (dnotify) is
// ENOTDIR on anything but a directory, and accepted on one (the sandbox
// never sends its signal).
TEST(FcntlNotifyTest, OnlyDirectories) {
  FileDescriptor m(memfd_create("n", MFD_CLOEXEC));
  EXPECT_ERRNO(ENOTDIR, fcntl(m.get(), F_NOTIFY, DN_CREATE));
  TempDir dir;
  FileDescriptor d(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(d.get(), 0);
  EXPECT_OK(fcntl(d.get(), F_NOTIFY, 0));
  EXPECT_OK(fcntl(d.get(), F_NOTIFY, DN_CREATE | DN_MULTISHOT));
  EXPECT_OK(fcntl(d.get(), F_NOTIFY, 0));
}

}  // namespace
}  // namespace syscall_test
