// Unix-domain sockets (socketpair, stream/dgram/seqpacket, paths and
// abstract names, SCM_RIGHTS, SCM_CREDENTIALS, SO_PEERCRED, shutdown, names,
// options) and AF_INET loopback.
#include <arpa/inet.h>
#include <linux/capability.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {


TEST(UnixSocketTest, SocketpairTypes) {
  for (int type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0) << type;
    Fd a(sv[0]), b(sv[1]);
    EXPECT_EQ(fcntl(a, F_GETFD), FD_CLOEXEC);
    ASSERT_EQ(send(a, "hello", 5, 0), 5);
    ASSERT_EQ(send(a, "world", 5, 0), 5);
    char buf[16];
    ssize_t n = recv(b, buf, sizeof(buf), 0);
    // Datagram kinds keep message boundaries; a stream may merge.
    if (type == SOCK_STREAM) {
      EXPECT_GE(n, 5);
    } else {
      EXPECT_EQ(n, 5);
    }
    int v = 0;
    socklen_t len = sizeof(v);
    ASSERT_EQ(getsockopt(a, SOL_SOCKET, SO_TYPE, &v, &len), 0);
    EXPECT_EQ(v, type);
    ASSERT_EQ(getsockopt(a, SOL_SOCKET, SO_DOMAIN, &v, &len), 0);
    EXPECT_EQ(v, AF_UNIX);
  }
  int sv[2];
  EXPECT_ERRNO(EOPNOTSUPP, socketpair(AF_INET, SOCK_STREAM, 0, sv));
}

TEST(UnixSocketTest, RecvmsgFlagsAreClean) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Fd a(sv[0]), b(sv[1]);
  ASSERT_EQ(send(a, "x", 1, 0), 1);
  char c;
  iovec iov{&c, 1};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = cbuf;
  h.msg_controllen = sizeof(cbuf);
  ASSERT_EQ(recvmsg(b, &h, 0), 1);
  EXPECT_EQ(h.msg_flags, 0);
  EXPECT_EQ(h.msg_controllen, 0u);
}

TEST(UnixSocketTest, SeqpacketTruncates) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  Fd a(sv[0]), b(sv[1]);
  ASSERT_EQ(send(a, "abcdef", 6, 0), 6);
  char buf[3];
  iovec iov{buf, sizeof(buf)};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  EXPECT_EQ(recvmsg(b, &h, 0), 3);
  EXPECT_TRUE(h.msg_flags & MSG_TRUNC);
}

TEST(UnixSocketTest, EofAndEpipe) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Fd a(sv[0]);
  ASSERT_EQ(shutdown(sv[1], SHUT_WR), 0);
  char c;
  EXPECT_EQ(recv(a, &c, 1, 0), 0);
  close(sv[1]);
  EXPECT_ERRNO(EPIPE, send(a, "x", 1, MSG_NOSIGNAL));
  EXPECT_ERRNO(EINVAL, shutdown(a, 7));
  // Without MSG_NOSIGNAL the sender also gets SIGPIPE.
  int st = RunInChild([&] {
    send(a, "x", 1, 0);
    return 0;
  });
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE) << st;
}

TEST(UnixSocketTest, PathBindConnectAccept) {
  std::string path = TmpDir() + "/" + UniqueName("sock");
  auto [addr, len] = PathAddr(path);
  Fd srv(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&addr), len), 0);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  Fd other(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_ERRNO(EADDRINUSE, bind(other, reinterpret_cast<sockaddr*>(&addr), len));
  // Bound but not listening: refused.
  Fd early(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_ERRNO(ECONNREFUSED, connect(early, reinterpret_cast<sockaddr*>(&addr), len));
  ASSERT_EQ(listen(srv, 8), 0);
  int v = 0;
  socklen_t vl = sizeof(v);
  ASSERT_EQ(getsockopt(srv, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl), 0);
  EXPECT_EQ(v, 1);

  Fd cli(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(connect(cli, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_ERRNO(EISCONN, connect(cli, reinterpret_cast<sockaddr*>(&addr), len));
  sockaddr_un peer{};
  socklen_t pl = sizeof(peer);
  Fd conn(accept4(srv, reinterpret_cast<sockaddr*>(&peer), &pl, SOCK_CLOEXEC));
  ASSERT_GE(conn, 0);
  EXPECT_EQ(pl, sizeof(sa_family_t));  // the client is unnamed
  EXPECT_EQ(fcntl(conn, F_GETFD), FD_CLOEXEC);

  sockaddr_un got{};
  socklen_t gl = sizeof(got);
  ASSERT_EQ(getpeername(cli, reinterpret_cast<sockaddr*>(&got), &gl), 0);
  EXPECT_EQ(std::string(got.sun_path), path);
  gl = sizeof(got);
  ASSERT_EQ(getsockname(conn, reinterpret_cast<sockaddr*>(&got), &gl), 0);
  EXPECT_EQ(std::string(got.sun_path), path);

  std::string big(200000, 'q');
  pid_t pid = fork();
  if (pid == 0) {
    size_t off = 0;
    while (off < big.size()) {
      ssize_t n = send(cli, big.data() + off, big.size() - off, 0);
      if (n <= 0) _exit(1);
      off += n;
    }
    _exit(0);
  }
  std::string recvd(big.size(), '\0');
  ASSERT_EQ(recv(conn, recvd.data(), recvd.size(), MSG_WAITALL),
            static_cast<ssize_t>(big.size()));
  EXPECT_EQ(recvd, big);
  int wst;
  ASSERT_EQ(waitpid(pid, &wst, 0), pid);
  EXPECT_EXIT_CODE(wst, 0);

  unlink(path.c_str());
  Fd late(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_ERRNO(ENOENT, connect(late, reinterpret_cast<sockaddr*>(&addr), len));
}

TEST(UnixSocketTest, AbstractNonblockingAcceptAndEpoll) {
  auto [addr, len] = AbstractAddr(UniqueName("seedvisor-test"));
  Fd srv(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0));
  ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(srv, 4), 0);
  EXPECT_ERRNO(EAGAIN, accept(srv, nullptr, nullptr));
  Fd ep(epoll_create1(0));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, srv, &ev), 0);
  epoll_event out[1];
  EXPECT_EQ(epoll_wait(ep, out, 1, 0), 0);
  Fd cli(socket(AF_UNIX, SOCK_SEQPACKET, 0));
  ASSERT_EQ(connect(cli, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(epoll_wait(ep, out, 1, 1000), 1);
  Fd conn(accept(srv, nullptr, nullptr));
  ASSERT_GE(conn, 0);
  EXPECT_EQ(epoll_wait(ep, out, 1, 0), 0);
  // Abstract names are looked up per socket type (unix_find_abstract()).
  Fd wrong(socket(AF_UNIX, SOCK_STREAM, 0));
  EXPECT_ERRNO(ECONNREFUSED, connect(wrong, reinterpret_cast<sockaddr*>(&addr), len));
  auto [none, nlen] = AbstractAddr(UniqueName("seedvisor-nobody"));
  EXPECT_ERRNO(ECONNREFUSED, connect(wrong, reinterpret_cast<sockaddr*>(&none), nlen));
}

// A listener queues backlog + 1 connections (unix_recvq_full()); then a
// non-blocking connect is EAGAIN and a blocking one waits for an accept.
TEST(UnixSocketTest, ListenBacklog) {
  for (int backlog : {0, 2}) {
    auto [addr, len] = AbstractAddr(UniqueName("seedvisor-backlog"));
    Fd srv(socket(AF_UNIX, SOCK_STREAM, 0));
    ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&addr), len), 0);
    ASSERT_EQ(listen(srv, backlog), 0);
    std::vector<int> clients;
    for (int i = 0; i <= backlog; ++i) {
      int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
      EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), len), 0) << i << ": "
                                                                         << strerror(errno);
      clients.push_back(c);
    }
    Fd extra(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0));
    EXPECT_ERRNO(EAGAIN, connect(extra, reinterpret_cast<sockaddr*>(&addr), len));
    // A blocking connect waits until the child accepts one.
    pid_t pid = fork();
    if (pid == 0) {
      usleep(100000);
      int c = accept(srv, nullptr, nullptr);
      _exit(c >= 0 ? 0 : 1);
    }
    ASSERT_GT(pid, 0);
    Fd blocking(socket(AF_UNIX, SOCK_STREAM, 0));
    EXPECT_EQ(connect(blocking, reinterpret_cast<sockaddr*>(&addr), len), 0) << strerror(errno);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int c : clients) close(c);
  }
}

TEST(UnixSocketTest, DatagramSendto) {
  std::string path = TmpDir() + "/" + UniqueName("dgram");
  auto [addr, len] = PathAddr(path);
  Fd rx(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(rx, reinterpret_cast<sockaddr*>(&addr), len), 0);
  Fd tx(socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_ERRNO(ENOTCONN, send(tx, "x", 1, 0));
  ASSERT_EQ(sendto(tx, "one", 3, 0, reinterpret_cast<sockaddr*>(&addr), len), 3);
  ASSERT_EQ(connect(tx, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(send(tx, "two!", 4, 0), 4);
  char buf[8];
  EXPECT_EQ(recv(rx, buf, sizeof(buf), 0), 3);
  EXPECT_EQ(recv(rx, buf, sizeof(buf), 0), 4);
  EXPECT_EQ(std::string(buf, 4), "two!");
  ASSERT_EQ(fcntl(rx, F_SETFL, O_NONBLOCK), 0);
  EXPECT_ERRNO(EAGAIN, recv(rx, buf, sizeof(buf), 0));
  unlink(path.c_str());
}

TEST(UnixSocketTest, DatagramRecvfromNamesTheSender) {
  auto [saddr, slen] = AbstractAddr(UniqueName("seedvisor-dsrv"));
  auto [caddr, clen] = AbstractAddr(UniqueName("seedvisor-dcli"));
  Fd srv(socket(AF_UNIX, SOCK_DGRAM, 0)), cli(socket(AF_UNIX, SOCK_DGRAM, 0));
  Fd anon(socket(AF_UNIX, SOCK_DGRAM, 0));
  ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&saddr), slen), 0);
  ASSERT_EQ(bind(cli, reinterpret_cast<sockaddr*>(&caddr), clen), 0);
  ASSERT_EQ(sendto(cli, "ping", 4, 0, reinterpret_cast<sockaddr*>(&saddr), slen), 4);
  char buf[8];
  sockaddr_un from{};
  socklen_t fl = sizeof(from);
  // Peek first: the address is there, and the datagram stays.
  ASSERT_EQ(recvfrom(srv, buf, sizeof(buf), MSG_PEEK, reinterpret_cast<sockaddr*>(&from), &fl), 4);
  EXPECT_EQ(fl, clen);
  fl = sizeof(from);
  ASSERT_EQ(recvfrom(srv, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl), 4);
  ASSERT_EQ(fl, clen);
  EXPECT_EQ(memcmp(&from, &caddr, clen), 0);
  // Reply to whoever it was.
  ASSERT_EQ(sendto(srv, "pong", 4, 0, reinterpret_cast<sockaddr*>(&from), fl), 4);
  ASSERT_EQ(recv(cli, buf, sizeof(buf), 0), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  // An unbound sender has no name: the length is 0 (unix_copy_addr()).
  ASSERT_EQ(sendto(anon, "x", 1, 0, reinterpret_cast<sockaddr*>(&saddr), slen), 1);
  fl = sizeof(from);
  ASSERT_EQ(recvfrom(srv, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl), 1);
  EXPECT_EQ(fl, 0u);
}

TEST(UnixSocketTest, AutobindGivesAbstractName) {
  Fd s(socket(AF_UNIX, SOCK_DGRAM, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(sa_family_t)), 0);
  sockaddr_un got{};
  socklen_t gl = sizeof(got);
  ASSERT_EQ(getsockname(s, reinterpret_cast<sockaddr*>(&got), &gl), 0);
  EXPECT_EQ(gl, offsetof(sockaddr_un, sun_path) + 6);  // NUL + 5 hex digits
  EXPECT_EQ(got.sun_path[0], '\0');
}

TEST(UnixSocketTest, ScmRightsPassesFiles) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Fd a(sv[0]), b(sv[1]);
  std::string path = TmpDir() + "/" + UniqueName("rights");
  Fd file(open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600));
  ASSERT_GE(file, 0);
  ASSERT_EQ(write(file, "content", 7), 7);
  char byte = 'x';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))] = {};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = cbuf;
  h.msg_controllen = sizeof(cbuf);
  cmsghdr* c = CMSG_FIRSTHDR(&h);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &file.fd, sizeof(int));
  ASSERT_EQ(sendmsg(a, &h, 0), 1);
  int bad = 9999;
  memcpy(CMSG_DATA(c), &bad, sizeof(int));
  EXPECT_ERRNO(EBADF, sendmsg(a, &h, 0));

  char rbyte;
  iovec riov{&rbyte, 1};
  alignas(cmsghdr) char rbuf[CMSG_SPACE(sizeof(int))] = {};
  msghdr r{};
  r.msg_iov = &riov;
  r.msg_iovlen = 1;
  r.msg_control = rbuf;
  r.msg_controllen = sizeof(rbuf);
  ASSERT_EQ(recvmsg(b, &r, MSG_CMSG_CLOEXEC), 1);
  EXPECT_EQ(r.msg_flags & ~MSG_CMSG_CLOEXEC, 0);
  cmsghdr* rc = CMSG_FIRSTHDR(&r);
  ASSERT_NE(rc, nullptr);
  ASSERT_EQ(rc->cmsg_type, SCM_RIGHTS);
  int got;
  memcpy(&got, CMSG_DATA(rc), sizeof(int));
  Fd gotf(got);
  EXPECT_NE(got, file.fd);
  EXPECT_EQ(fcntl(got, F_GETFD), FD_CLOEXEC);
  // The same open file description: the offset is shared.
  EXPECT_EQ(lseek(got, 0, SEEK_CUR), 7);
  ASSERT_EQ(lseek(got, 0, SEEK_SET), 0);
  EXPECT_EQ(lseek(file, 0, SEEK_CUR), 0);
  unlink(path.c_str());
}

TEST(UnixSocketTest, PeerCredAndScmCredentials) {
  std::string path = TmpDir() + "/" + UniqueName("cred");
  auto [addr, len] = PathAddr(path);
  Fd srv(socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(srv, 1), 0);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, reinterpret_cast<sockaddr*>(&addr), len) != 0) _exit(1);
    ucred u{getpid(), getuid(), getgid()};
    if (SendCmsg(c, SCM_CREDENTIALS, &u, sizeof(u)) != 1) _exit(2);
    char done;
    (void)!read(p[1], &done, 1);  // wait for the parent to finish
    _exit(0);
  }
  close(p[1]);
  Fd rd(p[0]);
  Fd conn(accept(srv, nullptr, nullptr));
  ASSERT_GE(conn, 0);
  ucred pc{};
  socklen_t pcl = sizeof(pc);
  ASSERT_EQ(getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &pc, &pcl), 0);
  EXPECT_EQ(pc.pid, pid);
  EXPECT_EQ(pc.uid, getuid());
  int on = 1;
  ASSERT_EQ(setsockopt(conn, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)), 0);
  char byte;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(ucred))] = {};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = cbuf;
  h.msg_controllen = sizeof(cbuf);
  ASSERT_EQ(recvmsg(conn, &h, 0), 1);
  cmsghdr* cm = CMSG_FIRSTHDR(&h);
  ASSERT_NE(cm, nullptr);
  ASSERT_EQ(cm->cmsg_type, SCM_CREDENTIALS);
  ucred u;
  memcpy(&u, CMSG_DATA(cm), sizeof(u));
  EXPECT_EQ(u.pid, pid);
  EXPECT_EQ(u.gid, getgid());
  close(p[0]);
  rd.fd = -1;
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
  unlink(path.c_str());
}

// __scm_send(): with CAP_SYS_ADMIN any pid may be claimed, but it must be
// one somebody has (find_get_pid()): a reaped child's is ESRCH.
TEST(UnixSocketTest, ScmCredentialsOfAPidNobodyHasIsEsrch) {
  if (!HaveCap(CAP_SYS_ADMIN) || !HaveCap(CAP_SETUID) || !HaveCap(CAP_SETGID)) {
    GTEST_SKIP() << "needs CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID";
  }
  const pid_t gone = fork();
  ASSERT_GE(gone, 0);
  if (gone == 0) _exit(0);
  int st;
  ASSERT_EQ(waitpid(gone, &st, 0), gone);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Fd a(sv[0]), b(sv[1]);
  ucred u{gone, getuid(), getgid()};
  EXPECT_EQ(SendCmsg(a, SCM_CREDENTIALS, &u, sizeof(u)), -1);
  EXPECT_EQ(errno, ESRCH);
  u.pid = 0;
  EXPECT_EQ(SendCmsg(a, SCM_CREDENTIALS, &u, sizeof(u)), -1);
  EXPECT_EQ(errno, ESRCH);
  // A live process other than the caller: its parent, the test's runner.
  u.pid = getppid();
  if (u.pid > 0) {
    EXPECT_EQ(SendCmsg(a, SCM_CREDENTIALS, &u, sizeof(u)), 1) << ErrnoName(errno);
  }
}

TEST(UnixSocketTest, ReceiveAndSendTimeouts) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Fd a(sv[0]), b(sv[1]);
  timeval tv{0, 50000};
  ASSERT_EQ(setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
  timeval got{};
  socklen_t gl = sizeof(got);
  ASSERT_EQ(getsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &got, &gl), 0);
  // Linux keeps it in jiffies: 50 ms may read back rounded up a tick.
  EXPECT_EQ(got.tv_sec, 0);
  EXPECT_GE(got.tv_usec, 50000);
  EXPECT_LT(got.tv_usec, 61000);
  char c;
  timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  EXPECT_ERRNO(EAGAIN, recv(a, &c, 1, 0));  // socket(7): EAGAIN at the timeout
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int64_t ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  EXPECT_GE(ms, 40);
  timeval bad{0, 2000000};
  EXPECT_ERRNO(EDOM, setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof(bad)));
  EXPECT_ERRNO(EINVAL, setsockopt(a, SOL_SOCKET, SO_SNDTIMEO, &bad, 4));
}

TEST(UnixSocketTest, Errors) {
  Fd file(open("/proc/self/exe", O_RDONLY));
  EXPECT_ERRNO(ENOTSOCK, listen(file, 1));
  Fd s(socket(AF_UNIX, SOCK_STREAM, 0));
  char c;
  EXPECT_ERRNO(ENOTCONN, send(s, "x", 1, 0));
  EXPECT_ERRNO(EINVAL, listen(s, 1));  // not bound
  EXPECT_ERRNO(EINVAL, accept(s, nullptr, nullptr));
  EXPECT_ERRNO(EINVAL, recv(s, &c, 1, 0));
  EXPECT_ERRNO(ESOCKTNOSUPPORT, socket(AF_UNIX, SOCK_PACKET, 0));
  Fd raw(socket(AF_UNIX, SOCK_RAW, 0));  // unix_create(): SOCK_RAW is SOCK_DGRAM
  int type = 0;
  socklen_t tl = sizeof(type);
  ASSERT_EQ(getsockopt(raw, SOL_SOCKET, SO_TYPE, &type, &tl), 0);
  EXPECT_EQ(type, SOCK_DGRAM);
  Fd d(socket(AF_UNIX, SOCK_DGRAM, 0));
  EXPECT_ERRNO(EOPNOTSUPP, listen(d, 1));
  // A path bound by a socket of another type: EPROTOTYPE (unix_find_bsd()).
  std::string path = TmpDir() + "/" + UniqueName("type");
  auto [addr, len] = PathAddr(path);
  ASSERT_EQ(bind(d, reinterpret_cast<sockaddr*>(&addr), len), 0);
  EXPECT_ERRNO(EPROTOTYPE, connect(s, reinterpret_cast<sockaddr*>(&addr), len));
  unlink(path.c_str());
}

// A connected loopback TCP pair: *cli connected to *conn, accepted from a
// listener on an ephemeral port.
void LoopbackTcpPair(Fd* cli, Fd* conn) {
  Fd srv(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_GE(srv, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t al = sizeof(a);
  ASSERT_EQ(getsockname(srv, reinterpret_cast<sockaddr*>(&a), &al), 0);
  EXPECT_NE(a.sin_port, 0);
  ASSERT_EQ(listen(srv, 4), 0);
  *cli = Fd(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_EQ(connect(*cli, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  *conn = Fd(accept(srv, nullptr, nullptr));
  ASSERT_GE(*conn, 0);
}

TEST(InetSocketTest, LoopbackTcpAndUdp) {
  Fd cli, conn;
  ASSERT_NO_FATAL_FAILURE(LoopbackTcpPair(&cli, &conn));
  ASSERT_EQ(write(cli, "ping", 4), 4);
  char buf[4];
  ASSERT_EQ(read(conn, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");

  Fd u1(socket(AF_INET, SOCK_DGRAM, 0)), u2(socket(AF_INET, SOCK_DGRAM, 0));
  sockaddr_in b{};
  b.sin_family = AF_INET;
  b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(u1, reinterpret_cast<sockaddr*>(&b), sizeof(b)), 0);
  socklen_t bl = sizeof(b);
  ASSERT_EQ(getsockname(u1, reinterpret_cast<sockaddr*>(&b), &bl), 0);
  ASSERT_EQ(sendto(u2, "dg", 2, 0, reinterpret_cast<sockaddr*>(&b), sizeof(b)), 2);
  sockaddr_in from{};
  socklen_t fl = sizeof(from);
  ASSERT_EQ(recvfrom(u1, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl), 2);
  EXPECT_EQ(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
}

// FIONREAD counts the bytes queued to read, SIOCOUTQ (TIOCOUTQ) those sent
// but not yet acknowledged (tcp_ioctl()): on loopback, at most what was sent.
TEST(InetSocketTest, QueueIoctls) {
  Fd cli, conn;
  ASSERT_NO_FATAL_FAILURE(LoopbackTcpPair(&cli, &conn));
  ASSERT_EQ(write(cli, "ping", 4), 4);
  pollfd p{conn, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  int n = -1;
  ASSERT_EQ(ioctl(conn, FIONREAD, &n), 0) << strerror(errno);
  EXPECT_EQ(n, 4);
  n = -1;
  ASSERT_EQ(ioctl(cli, TIOCOUTQ, &n), 0) << strerror(errno);
  EXPECT_GE(n, 0);
  EXPECT_LE(n, 4);
}

// What needs CAP_NET_RAW or CAP_NET_ADMIN is refused to a process without
// them (inet_create(), sk_setsockopt(), do_ip_setsockopt(), dev_ioctl()).
// The sandbox makes host sockets with its own privileges, so this is the
// guest's check, not the host's. Runs in a child that drops to nobody.
TEST(InetSocketTest, NetworkPrivilegesAreTheCallers) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    gid_t g = 65534;
    if (setgroups(1, &g) != 0 || setresgid(g, g, g) != 0 || setresuid(65534, 65534, 65534) != 0) {
      _exit(10);
    }
    int code = 0;
    auto want = [&](long rc, int err, int bit) {
      if (!(rc == -1 && errno == err)) code |= bit;
    };
    want(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), EPERM, 1);
    want(socket(AF_INET6, SOCK_RAW, IPPROTO_RAW), EPERM, 2);
    want(socket(AF_PACKET, SOCK_DGRAM, 0), EPERM, 4);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1, seven = 7;
    want(setsockopt(u, SOL_SOCKET, SO_MARK, &one, sizeof(one)), EPERM, 8);
    want(setsockopt(u, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one)), EPERM, 16);
    want(setsockopt(u, SOL_SOCKET, SO_PRIORITY, &seven, sizeof(seven)), EPERM, 32);
    want(setsockopt(u, SOL_SOCKET, SO_DEBUG, &one, sizeof(one)), EACCES, 64);
    ifreq ifr{};
    strcpy(ifr.ifr_name, "lo");
    want(ioctl(u, SIOCSIFFLAGS, &ifr), EPERM, 128);
    // No capability needed: IP_FREEBIND, SO_PRIORITY up to 6.
    if (setsockopt(u, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one)) != 0) code |= 256;
    int six = 6;
    if (setsockopt(u, SOL_SOCKET, SO_PRIORITY, &six, sizeof(six)) != 0) code |= 512;
    _exit(code > 255 ? 11 : code);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "bits: 1 raw4 2 raw6 4 packet 8 SO_MARK 16 IP_TRANSPARENT "
                                   "32 SO_PRIORITY 7 64 SO_DEBUG 128 SIOCSIFFLAGS; 10 setuid "
                                   "failed, 11 FREEBIND/SO_PRIORITY 6 refused";
}

}  // namespace
}  // namespace syscall_test
