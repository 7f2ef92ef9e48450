// The pids a unix socket shows of its peer (SO_PEERCRED: sk_peer_pid) and
// of a message's sender (SCM_CREDENTIALS: UNIXCB(skb).pid) are struct pid
// references, shown as pid_vnr() in the reader's namespace: a reaped peer
// or sender still shows the number it had, also once that number names
// another process (free_pid() frees the numbers, not the struct).
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// The pid SO_PEERCRED shows on `fd`, or -1.
int PeerPid(int fd) {
  ucred c{};
  socklen_t len = sizeof(c);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) return -1;
  return c.pid;
}

// Receives one byte with its SCM_CREDENTIALS; the pid, or -1.
int ReceivedPid(int fd) {
  char b;
  iovec iov = {&b, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof(control);
  if (recvmsg(fd, &m, 0) != 1) return -1;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  if (c == nullptr || c->cmsg_type != SCM_CREDENTIALS) return -1;
  ucred u;
  memcpy(&u, CMSG_DATA(c), sizeof(u));
  return u.pid;
}

// Sends one byte with the caller's credentials.
bool SendWithCreds(int fd) {
  char b = 'x';
  iovec iov = {&b, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_CREDENTIALS;
  c->cmsg_len = CMSG_LEN(sizeof(ucred));
  ucred u{getpid(), getuid(), getgid()};
  memcpy(CMSG_DATA(c), &u, sizeof(u));
  return sendmsg(fd, &m, 0) == 1;
}

// In the init of a pid namespace of its own: a process (id 2) connects to
// the init's listener, sends a byte with its credentials and is reaped;
// the init then accepts and reads 2 as SO_PEERCRED's and the message's
// pid, again once another process has id 2. Returns 0 or what differed.
int InNamespace() {
  int l = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const char kName[] = "\0socket_pid_test";  // abstract: nothing to remove
  memcpy(a.sun_path, kName, sizeof(kName));
  const socklen_t alen = offsetof(sockaddr_un, sun_path) + sizeof(kName);
  if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&a), alen) != 0 || listen(l, 1) != 0) {
    return 1;
  }
  const pid_t peer = fork();
  if (peer == 0) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || connect(s, reinterpret_cast<sockaddr*>(&a), alen) != 0) _exit(1);
    _exit(SendWithCreds(s) ? 0 : 2);
  }
  if (peer != 2) return 2;
  if (WaitCode(peer) != 0) return 3;  // reaped
  int c = accept(l, nullptr, nullptr);
  const int one = 1;
  if (c < 0 || setsockopt(c, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) return 4;
  if (PeerPid(c) != 2) return 10 + PeerPid(c);
  // Its id given to another process: still the reaped one's.
  int park[2];
  if (pipe(park) != 0) return 5;
  const pid_t other = ForkAt(2);
  if (other == 0) {
    close(park[1]);
    char b;
    (void)!read(park[0], &b, 1);
    _exit(0);
  }
  if (other != 2) return 6;
  const int peer_pid = PeerPid(c);
  const int received = ReceivedPid(c);
  close(park[1]);
  WaitCode(other);
  if (peer_pid != 2) return 30 + peer_pid;
  if (received != 2) return 50 + received;
  return 0;
}

TEST(SocketPidTest, AReapedPeerAndSenderKeepTheIdsTheyHad) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t init = ForkWith(CLONE_NEWPID);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  if (init == 0) _exit(InNamespace());
  // 1x: setup; 1y: SO_PEERCRED read y once the peer was reaped; 3y, 5y:
  // SO_PEERCRED and SCM_CREDENTIALS read y once its id was another's.
  EXPECT_EQ(WaitCode(init), 0);
}

}  // namespace
}  // namespace syscall_test
