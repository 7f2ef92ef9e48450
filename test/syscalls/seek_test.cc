// lseek(2) SEEK_END, SEEK_DATA and SEEK_HOLE on /proc: seq_files refuse all
// three (seq_lseek()); files that are no seq_file and the directories seek
// as generic_file_llseek() does with i_size 0.
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

void ExpectSeqFile(const std::string& path) {
  SCOPED_TRACE(path);
  FileDescriptor fd(open(path.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(lseek(fd.get(), 1, SEEK_SET), 1);
  EXPECT_EQ(lseek(fd.get(), 1, SEEK_CUR), 2);
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), 0, SEEK_END));
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), 1, SEEK_END));
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), 0, SEEK_DATA));
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), 0, SEEK_HOLE));
}

void ExpectSizeZero(const std::string& path) {
  SCOPED_TRACE(path);
  FileDescriptor fd(open(path.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_END), 0);
  EXPECT_EQ(lseek(fd.get(), 3, SEEK_END), 3);
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), -1, SEEK_END));
  EXPECT_ERRNO(ENXIO, lseek(fd.get(), 0, SEEK_DATA));
  EXPECT_ERRNO(ENXIO, lseek(fd.get(), 1, SEEK_HOLE));
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
}

TEST(SeekTest, ProcSeqFiles) {
  for (const char* p : {"/proc/self/status", "/proc/self/stat", "/proc/self/maps",
                        "/proc/self/mountinfo", "/proc/meminfo", "/proc/cpuinfo",
                        "/proc/version", "/proc/uptime", "/proc/self/comm"}) {
    ExpectSeqFile(p);
  }
}

TEST(SeekTest, ProcFilesThatAreNoSeqFile) {
  for (const char* p : {"/proc/self/cmdline", "/proc/self/environ",
                        "/proc/sys/kernel/hostname", "/proc/sys/vm/overcommit_memory"}) {
    ExpectSizeZero(p);
  }
}

TEST(SeekTest, ProcDirectories) {
  for (const char* p : {"/proc", "/proc/self", "/proc/self/fd", "/proc/self/task", "/proc/sys",
                        "/proc/sys/kernel"}) {
    ExpectSizeZero(p);
  }
}

// A dirent offset stays usable after SEEK_END moved elsewhere and back.
TEST(SeekTest, ProcDirectoryStillReadsAfterSeekEnd) {
  FileDescriptor fd(open("/proc/self", O_RDONLY | O_DIRECTORY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_END), 0);
  char buf[4096];
  EXPECT_GT(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)), 0);
}

}  // namespace
}  // namespace syscall_test
