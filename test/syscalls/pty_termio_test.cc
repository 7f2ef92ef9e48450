// TCGETA/TCSETA/TCSETAW/TCSETAF, the System V struct termio of a pty
// (tty_mode_ioctl(): get_termio(), set_termios() with TERMIOS_TERMIO): the
// low 16 bits of each flag word and the first NCC control characters of
// the termios that TCGETS shows; a bad buffer is EFAULT, a file that is no
// terminal ENOTTY (LTP's ioctl01).
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class PtyTermioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    master_ = FileDescriptor(posix_openpt(O_RDWR | O_NOCTTY));
    ASSERT_GE(master_.get(), 0) << ErrnoName(errno);
    ASSERT_EQ(grantpt(master_.get()), 0);
    ASSERT_EQ(unlockpt(master_.get()), 0);
    replica_ = FileDescriptor(open(ptsname(master_.get()), O_RDWR | O_NOCTTY));
    ASSERT_GE(replica_.get(), 0) << ErrnoName(errno);
  }
  FileDescriptor master_, replica_;
};

TEST_F(PtyTermioTest, GetShowsTheLowHalfOfTermios) {
  for (int fd : {master_.get(), replica_.get()}) {
    termios ts{};
    ASSERT_EQ(ioctl(fd, TCGETS, &ts), 0) << ErrnoName(errno);
    termio to;
    memset(&to, 0x5a, sizeof(to));
    ASSERT_EQ(ioctl(fd, TCGETA, &to), 0) << ErrnoName(errno);
    EXPECT_EQ(to.c_iflag, ts.c_iflag & 0xffff);
    EXPECT_EQ(to.c_oflag, ts.c_oflag & 0xffff);
    EXPECT_EQ(to.c_cflag, ts.c_cflag & 0xffff);
    EXPECT_EQ(to.c_lflag, ts.c_lflag & 0xffff);
    EXPECT_EQ(to.c_line, ts.c_line);
    EXPECT_EQ(memcmp(to.c_cc, ts.c_cc, NCC), 0);
  }
}

TEST_F(PtyTermioTest, SetChangesWhatTcgetsShows) {
  termio to{};
  ASSERT_EQ(ioctl(replica_.get(), TCGETA, &to), 0);
  const bool echo = (to.c_lflag & ECHO) != 0;
  to.c_lflag ^= ECHO;
  to.c_cc[VINTR] = 0x01;
  ASSERT_EQ(ioctl(replica_.get(), TCSETA, &to), 0) << ErrnoName(errno);
  termios ts{};
  ASSERT_EQ(ioctl(replica_.get(), TCGETS, &ts), 0);
  EXPECT_EQ((ts.c_lflag & ECHO) != 0, !echo);
  EXPECT_EQ(ts.c_cc[VINTR], 0x01);
  // The master sets the same (the replica's) termios.
  to.c_lflag ^= ECHO;
  ASSERT_EQ(ioctl(master_.get(), TCSETAW, &to), 0) << ErrnoName(errno);
  ASSERT_EQ(ioctl(replica_.get(), TCGETS, &ts), 0);
  EXPECT_EQ((ts.c_lflag & ECHO) != 0, echo);
  ASSERT_EQ(ioctl(replica_.get(), TCSETAF, &to), 0) << ErrnoName(errno);
}

TEST_F(PtyTermioTest, BadBufferIsEfaultAndNoTerminalIsEnotty) {
  EXPECT_ERRNO(EFAULT, ioctl(master_.get(), TCGETA, nullptr));
  EXPECT_ERRNO(EFAULT, ioctl(master_.get(), TCGETA, reinterpret_cast<termio*>(-1)));
  EXPECT_ERRNO(EFAULT, ioctl(replica_.get(), TCSETA, nullptr));
  TempDir dir;
  FileDescriptor f(open(dir.Path("f").c_str(), O_CREAT | O_RDWR, 0600));
  ASSERT_GE(f.get(), 0);
  termio to{};
  EXPECT_ERRNO(ENOTTY, ioctl(f.get(), TCGETA, &to));
  EXPECT_ERRNO(ENOTTY, ioctl(f.get(), TCSETA, &to));
}

}  // namespace
}  // namespace syscall_test
