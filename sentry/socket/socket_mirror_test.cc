#include "sentry/socket/socket_mirror.h"

#include <poll.h>
#include <sys/socket.h>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

short Polls(const SocketMirror& m) {
  pollfd p{m.fd(), POLLIN | POLLOUT | POLLRDHUP, 0};
  EXPECT_GE(poll(&p, 1, 0), 0);
  return p.revents;
}

// A datagram mirror keeps POLLERR up for as long as its owner says, through
// out edges (each a send on m, which would take m's error) and other
// changes, and shows it again after it was cleared.
TEST(SocketMirror, DatagramErrorStaysUpThroughOutEdges) {
  SocketMirror m;
  ASSERT_TRUE(m.Make(SOCK_DGRAM, true));
  m.Set(POLLOUT, false, false);
  EXPECT_EQ(Polls(m), POLLOUT);
  for (int round = 0; round < 3; ++round) {
    m.Set(POLLOUT | POLLERR, false, true);
    EXPECT_EQ(Polls(m), POLLOUT | POLLERR) << "round " << round;
    m.Set(POLLOUT | POLLERR, false, true);  // another change, error still up
    EXPECT_EQ(Polls(m), POLLOUT | POLLERR) << "round " << round;
    m.Set(POLLIN | POLLOUT | POLLERR, true, true);
    EXPECT_EQ(Polls(m), POLLIN | POLLOUT | POLLERR) << "round " << round;
    m.Set(POLLOUT | POLLERR, false, true);  // the data was read
    EXPECT_EQ(Polls(m), POLLOUT | POLLERR) << "round " << round;
    m.Set(POLLOUT, false, true);
    EXPECT_EQ(Polls(m), POLLOUT) << "round " << round;
  }
}

}  // namespace
}  // namespace seedvisor::sentry
