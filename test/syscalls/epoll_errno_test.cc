// epoll's refusals in Linux's order (LTP epoll_ctl06): an O_PATH file is no
// file to epoll_ctl/epoll_wait (fdget(): EBADF), whether as the epoll fd or
// as the target; a file that has no poll is EPERM as a target; an epoll fd
// that is no epoll file is EINVAL.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

TEST(EpollErrnoTest, OpathFilesAreEbadf) {
  TempDir dir;
  FileDescriptor ep(epoll_create1(0));
  ASSERT_GE(ep.get(), 0) << ErrnoName(errno);
  FileDescriptor path(open(dir.path().c_str(), O_PATH));
  ASSERT_GE(path.get(), 0) << ErrnoName(errno);
  epoll_event ev{};
  ev.events = EPOLLIN;
  EXPECT_ERRNO(EBADF, epoll_ctl(ep.get(), EPOLL_CTL_ADD, path.get(), &ev));
  EXPECT_ERRNO(EBADF, epoll_ctl(path.get(), EPOLL_CTL_ADD, ep.get(), &ev));
  EXPECT_ERRNO(EBADF, epoll_wait(path.get(), &ev, 1, 0));
  FileDescriptor file(open(dir.Path("f").c_str(), O_CREAT | O_RDWR, 0600));
  ASSERT_GE(file.get(), 0);
  EXPECT_ERRNO(EPERM, epoll_ctl(ep.get(), EPOLL_CTL_ADD, file.get(), &ev));
  EXPECT_ERRNO(EINVAL, epoll_wait(file.get(), &ev, 1, 0));
  EXPECT_ERRNO(EINVAL, epoll_ctl(file.get(), EPOLL_CTL_ADD, ep.get(), &ev));
}

}  // namespace
}  // namespace syscall_test
