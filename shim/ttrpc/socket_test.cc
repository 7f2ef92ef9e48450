#include "shim/ttrpc/socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace seedvisor::ttrpc {
namespace {

class FdPassingTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair_), 0); }
  void TearDown() override {
    close(pair_[0]);
    close(pair_[1]);
  }
  int pair_[2] = {-1, -1};
};

TEST_F(FdPassingTest, TheReceivedFdIsTheSameOpenFileAndCloseOnExec) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_TRUE(SendFd(pair_[0], p[1]).ok());
  absl::StatusOr<int> got = ReceiveFd(pair_[1]);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_NE(*got, p[1]);
  EXPECT_EQ(fcntl(*got, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_EQ(write(*got, "x", 1), 1);  // writes into the sender's pipe
  char c = 0;
  ASSERT_EQ(read(p[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  close(*got);
  close(p[0]);
  close(p[1]);
}

TEST_F(FdPassingTest, AMessageWithoutAnFdIsAnError) {
  ASSERT_EQ(write(pair_[0], "y", 1), 1);
  absl::StatusOr<int> got = ReceiveFd(pair_[1]);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("without an fd"), std::string::npos) << got.status();
}

TEST_F(FdPassingTest, APeerThatClosesIsAnError) {
  close(pair_[0]);
  pair_[0] = -1;
  absl::StatusOr<int> got = ReceiveFd(pair_[1]);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("closed"), std::string::npos) << got.status();
}

TEST_F(FdPassingTest, SendingOnAClosedPeerFailsWithoutSigpipe) {
  close(pair_[1]);
  pair_[1] = -1;
  absl::Status s = SendFd(pair_[0], 0);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("sendmsg"), std::string::npos) << s;
}

}  // namespace
}  // namespace seedvisor::ttrpc
