// Conformance tests for RLIMIT_FSIZE beyond write(2): ftruncate, truncate
// and fallocate (inode_newsize_ok(): EFBIG and SIGXFSZ when a file would
// grow past it), and AIO writes (generic_write_checks() as for write(2)).
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

std::atomic<int> g_xfsz{0};

// In a child: RLIMIT_FSIZE of 4096, SIGXFSZ counted instead of fatal.
int WithFsizeLimit(const std::function<int(int fd)>& body) {
  TempDir dir;
  std::string p = dir.Path("f");
  return RunInChild([&] {
    struct sigaction sa = {};
    sa.sa_handler = [](int) { g_xfsz.fetch_add(1); };
    sigaction(SIGXFSZ, &sa, nullptr);
    struct rlimit r = {4096, RLIM_INFINITY};
    if (setrlimit(RLIMIT_FSIZE, &r) != 0) return 100;
    int fd = open(p.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0) return 101;
    return body(fd);
  });
}

TEST(RlimitFsizeTest, Ftruncate) {
  int status = WithFsizeLimit([](int fd) {
    if (ftruncate(fd, 4096) != 0) return 1;  // up to the limit: fine
    if (g_xfsz.load() != 0) return 2;
    if (ftruncate(fd, 4097) != -1 || errno != EFBIG) return 3;
    if (g_xfsz.load() != 1) return 4;
    struct stat st;
    fstat(fd, &st);
    if (st.st_size != 4096) return 5;
    // Shrinking is never limited.
    if (ftruncate(fd, 10) != 0) return 6;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// A file already past the limit may be truncated to any size up to its own.
TEST(RlimitFsizeTest, TruncateWithinExistingSize) {
  TempDir dir;
  std::string p = dir.Path("big");
  ASSERT_TRUE(WriteFile(p, std::string(10000, 'x')));
  int status = RunInChild([p] {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit r = {4096, RLIM_INFINITY};
    if (setrlimit(RLIMIT_FSIZE, &r) != 0) return 100;
    if (truncate(p.c_str(), 8000) != 0) return 1;
    if (truncate(p.c_str(), 9000) != -1 || errno != EFBIG) return 2;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(RlimitFsizeTest, Fallocate) {
  int status = WithFsizeLimit([](int fd) {
    if (fallocate(fd, 0, 0, 4096) != 0) {
      return errno == EOPNOTSUPP ? 0 : 1;  // a filesystem without fallocate
    }
    if (fallocate(fd, 0, 4000, 200) != -1 || errno != EFBIG) return 2;
    if (g_xfsz.load() != 1) return 3;
    // FALLOC_FL_KEEP_SIZE does not grow the file: not limited.
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 4000, 200) != 0) return 4;
    struct stat st;
    fstat(fd, &st);
    if (st.st_size != 4096) return 5;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// io_submit's IOCB_CMD_PWRITE goes through generic_write_checks() like
// pwrite(2): cut short at the limit, then EFBIG (the event's result, not
// io_submit's) and SIGXFSZ.
TEST(RlimitFsizeTest, AioWrite) {
  int status = WithFsizeLimit([](int fd) {
    aio_context_t ctx = 0;
    if (syscall(SYS_io_setup, 4, &ctx) != 0) return 10;
    static char buf[200] = {};
    auto write_at = [&](off_t off) -> int64_t {
      iocb cb{};
      cb.aio_fildes = fd;
      cb.aio_lio_opcode = IOCB_CMD_PWRITE;
      cb.aio_buf = reinterpret_cast<uint64_t>(buf);
      cb.aio_nbytes = sizeof(buf);
      cb.aio_offset = off;
      iocb* p = &cb;
      if (syscall(SYS_io_submit, ctx, 1, &p) != 1) return -1000 - errno;
      io_event ev{};
      timespec ts{30, 0};
      if (syscall(SYS_io_getevents, ctx, 1, 1, &ev, &ts) != 1) return -2000 - errno;
      return ev.res;
    };
    if (write_at(4000) != 96) return 1;  // cut short at the limit
    if (g_xfsz.load() != 0) return 2;
    if (write_at(4096) != -EFBIG) return 3;
    if (g_xfsz.load() != 1) return 4;
    struct stat st;
    fstat(fd, &st);
    if (st.st_size != 4096) return 5;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
