// The guest of socket_pause_test.sh (issue 19): one thread blocked in each
// blocking socket call (unix stream/seqpacket/dgram, TCP and UDP loopback;
// receives, sends into a full buffer, accept, connect into a full backlog,
// poll, epoll_wait, recvmmsg, and timed calls), so that the test can pause
// and resume the sandbox around them.
//
// Prints "ready N" once all N threads sleep (state S in
// /proc/self/task/TID/stat), then waits for a line on stdin. Then it checks
// that no call returned meanwhile, ends each wait (sends data, drains the
// buffer, connects, accepts) and checks each call's result: one line
// "FAIL name: ..." per wrong one, and finally "done N ok" or "done N FAILED".
// Exit status 0 if all N were right.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum Kind { RECV, SEND, ACCEPT, CONNECT };

struct Waiter {
  const char* name;
  enum Kind kind;
  int fd;       // the fd the call blocks on
  int peer;     // what ends the wait: the sender, the reader, the listener
  long want;    // the result it must return (-1: any fd >= 0 for accept)
  long (*call)(struct Waiter*);
  // The call's outcome.
  pthread_t thread;
  volatile pid_t tid;
  volatile int done;
  long rc;
  int err;
  // For connect: the listener's address.
  struct sockaddr_un addr;
  socklen_t addrlen;
  int ep;  // epoll_wait's instance
};

static int die(const char* what) {
  printf("FAIL setup: %s: %s\n", what, strerror(errno));
  fflush(stdout);
  exit(2);
}

static long Recv(struct Waiter* w) {
  char b[16];
  return recv(w->fd, b, sizeof(b), 0);
}
static long Read(struct Waiter* w) {
  char b[16];
  return read(w->fd, b, sizeof(b));
}
static long Recvmsg(struct Waiter* w) {
  char b[16];
  struct iovec iov = {b, sizeof(b)};
  struct msghdr h = {0};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  return recvmsg(w->fd, &h, 0);
}
static long Recvfrom(struct Waiter* w) {
  char b[16];
  struct sockaddr_storage from;
  socklen_t fl = sizeof(from);
  return recvfrom(w->fd, b, sizeof(b), 0, (struct sockaddr*)&from, &fl);
}
static long RecvmmsgWithin(struct Waiter* w, struct timespec* timeout) {
  char b[16];
  struct iovec iov = {b, sizeof(b)};
  struct mmsghdr m = {0};
  m.msg_hdr.msg_iov = &iov;
  m.msg_hdr.msg_iovlen = 1;
  return recvmmsg(w->fd, &m, 1, 0, timeout);
}
static long Recvmmsg(struct Waiter* w) { return RecvmmsgWithin(w, NULL); }
static long RecvmmsgTimed(struct Waiter* w) {
  struct timespec ts = {120, 0};  // checked after each message: waits for the first
  return RecvmmsgWithin(w, &ts);
}
static long Send1(struct Waiter* w) { return send(w->fd, "s", 1, 0); }
static long SendMsg(struct Waiter* w) {
  static char big[1000];
  return send(w->fd, big, sizeof(big), 0);
}
static long Accept(struct Waiter* w) { return accept(w->fd, NULL, NULL); }
static long Connect(struct Waiter* w) {
  return connect(w->fd, (struct sockaddr*)&w->addr, w->addrlen);
}
static long Poll(struct Waiter* w) {
  struct pollfd p = {w->fd, POLLIN, 0};
  return poll(&p, 1, -1);
}
static long EpollWait(struct Waiter* w) {
  struct epoll_event ev;
  return epoll_wait(w->ep, &ev, 1, -1);
}

static void* Run(void* arg) {
  struct Waiter* w = arg;
  w->tid = (pid_t)syscall(SYS_gettid);
  w->rc = w->call(w);
  w->err = errno;
  __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static char ThreadState(pid_t tid) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return '?';
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return '?';
  buf[n] = 0;
  char* p = strrchr(buf, ')');
  return p && p[1] && p[2] ? p[2] : '?';
}

static double Now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void Pair(int type, int sv[2]) {
  if (socketpair(AF_UNIX, type, 0, sv) != 0) die("socketpair");
}

// Fills fd's send buffer (messages of `size`); the receiver reads nothing.
// A unix socket's is full at the first EAGAIN; TCP's frees as the peer
// takes what was in flight: `quiet_passes` passes 20 ms apart must send
// nothing.
static void Fill(int fd, size_t size, int quiet_passes) {
  static char buf[65536];
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  int quiet = 0;
  for (int pass = 0; pass < 1000; ++pass) {
    int sent = 0;
    for (;;) {
      if (send(fd, buf, size, MSG_DONTWAIT) < 0) {
        if (errno != EAGAIN) die("fill");
        break;
      }
      ++sent;
    }
    quiet = sent == 0 ? quiet + 1 : 0;
    if (quiet == quiet_passes) return;
    usleep(20000);
  }
  die("fill: the buffer never filled");
}

static void Drain(int fd) {
  static char buf[65536];
  while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
}

static int UnixListener(int type, int backlog, struct sockaddr_un* a, socklen_t* len,
                        const char* name) {
  int l = socket(AF_UNIX, type, 0);
  memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "pause-%s-%d", name, getpid());
  *len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a->sun_path + 1);
  if (l < 0 || bind(l, (struct sockaddr*)a, *len) != 0 || listen(l, backlog) != 0)
    die("unix listener");
  return l;
}

static int TcpListener(struct sockaddr_in* a) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  // Accepted sockets get a small locked receive buffer and a small MSS: a
  // full connection stays full, and a read reopens the window at once.
  int small = 4096, mss = 1024;
  setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  setsockopt(l, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
  memset(a, 0, sizeof(*a));
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(*a);
  if (l < 0 || bind(l, (struct sockaddr*)a, sizeof(*a)) != 0 || listen(l, 4) != 0 ||
      getsockname(l, (struct sockaddr*)a, &len) != 0)
    die("tcp listener");
  return l;
}

static void TcpPair(int sv[2]) {
  struct sockaddr_in a;
  int l = TcpListener(&a);
  sv[1] = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096, mss = 1024;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  setsockopt(sv[1], IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss));
  if (connect(sv[1], (struct sockaddr*)&a, sizeof(a)) != 0) die("tcp connect");
  sv[0] = accept(l, NULL, NULL);
  if (sv[0] < 0) die("tcp accept");
  close(l);
}

static void UdpPair(int sv[2]) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  sv[0] = socket(AF_INET, SOCK_DGRAM, 0);
  sv[1] = socket(AF_INET, SOCK_DGRAM, 0);
  if (bind(sv[0], (struct sockaddr*)&a, sizeof(a)) != 0 ||
      getsockname(sv[0], (struct sockaddr*)&a, &len) != 0 ||
      connect(sv[1], (struct sockaddr*)&a, sizeof(a)) != 0)
    die("udp pair");
}

static void Timed(int fd, int opt) {
  struct timeval tv = {120, 0};
  if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)) != 0) die("timeout");
}

#define MAXW 32
static struct Waiter ws[MAXW];
static int nw;

static struct Waiter* Add(const char* name, enum Kind kind, int fd, int peer, long want,
                          long (*call)(struct Waiter*)) {
  struct Waiter* w = &ws[nw++];
  w->name = name;
  w->kind = kind;
  w->fd = fd;
  w->peer = peer;
  w->want = want;
  w->call = call;
  w->ep = -1;
  return w;
}

// A receive on rx (a new pair of `type`), ended by one byte from the peer.
static struct Waiter* AddRecv(const char* name, int type, long (*call)(struct Waiter*)) {
  int sv[2];
  if (type == SOCK_STREAM + 100) TcpPair(sv);
  else if (type == SOCK_DGRAM + 100) UdpPair(sv);
  else Pair(type, sv);
  return Add(name, RECV, sv[0], sv[1], 1, call);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const int kTcp = SOCK_STREAM + 100, kUdp = SOCK_DGRAM + 100;
  // Receives.
  AddRecv("unix-stream recv", SOCK_STREAM, Recv);
  AddRecv("unix-stream read", SOCK_STREAM, Read);
  AddRecv("unix-stream recvmsg", SOCK_STREAM, Recvmsg);
  Timed(AddRecv("unix-stream recv SO_RCVTIMEO", SOCK_STREAM, Recv)->fd, SO_RCVTIMEO);
  AddRecv("unix-stream poll", SOCK_STREAM, Poll);
  AddRecv("unix-seqpacket recv", SOCK_SEQPACKET, Recv);
  Timed(AddRecv("unix-seqpacket recvmsg SO_RCVTIMEO", SOCK_SEQPACKET, Recvmsg)->fd, SO_RCVTIMEO);
  AddRecv("unix-dgram recvfrom", SOCK_DGRAM, Recvfrom);
  AddRecv("unix-dgram recvmmsg", SOCK_DGRAM, Recvmmsg);
  AddRecv("unix-dgram recvmmsg timeout", SOCK_DGRAM, RecvmmsgTimed);
  AddRecv("tcp recv", kTcp, Recv);
  Timed(AddRecv("tcp recv SO_RCVTIMEO", kTcp, Recv)->fd, SO_RCVTIMEO);
  AddRecv("udp recvfrom", kUdp, Recvfrom);
  AddRecv("udp recvmmsg", kUdp, Recvmmsg);
  struct Waiter* ew = AddRecv("udp epoll_wait", kUdp, EpollWait);
  ew->ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  if (epoll_ctl(ew->ep, EPOLL_CTL_ADD, ew->fd, &ev) != 0) die("epoll_ctl");

  // Sends into a full buffer, ended by draining the receiver.
  int sv[2];
  Pair(SOCK_STREAM, sv);
  Fill(sv[1], 65536, 1);
  Add("unix-stream send", SEND, sv[1], sv[0], 1, Send1);
  Pair(SOCK_STREAM, sv);
  Fill(sv[1], 65536, 1);
  Timed(sv[1], SO_SNDTIMEO);
  Add("unix-stream send SO_SNDTIMEO", SEND, sv[1], sv[0], 1, Send1);
  Pair(SOCK_SEQPACKET, sv);
  Fill(sv[1], 1000, 1);
  Add("unix-seqpacket send", SEND, sv[1], sv[0], 1000, SendMsg);
  Pair(SOCK_DGRAM, sv);
  Fill(sv[1], 1000, 1);
  Add("unix-dgram send", SEND, sv[1], sv[0], 1000, SendMsg);
  TcpPair(sv);
  Fill(sv[1], 65536, 5);
  Add("tcp send", SEND, sv[1], sv[0], 1, Send1);

  // accept with nothing pending, ended by a connection.
  struct sockaddr_un ua;
  socklen_t ulen;
  int l = UnixListener(SOCK_STREAM, 4, &ua, &ulen, "acc");
  struct Waiter* w = Add("unix-stream accept", ACCEPT, l, -1, -1, Accept);
  w->addr = ua;
  w->addrlen = ulen;
  l = UnixListener(SOCK_SEQPACKET, 4, &ua, &ulen, "sqacc");
  w = Add("unix-seqpacket accept SO_RCVTIMEO", ACCEPT, l, -1, -1, Accept);
  Timed(l, SO_RCVTIMEO);
  w->addr = ua;
  w->addrlen = ulen;
  struct sockaddr_in ta;
  l = TcpListener(&ta);
  w = Add("tcp accept", ACCEPT, l, -1, -1, Accept);
  memcpy(&w->addr, &ta, sizeof(ta));
  w->addrlen = sizeof(ta);

  // connect into a full backlog (0 takes one), ended by an accept.
  for (int type = SOCK_STREAM; type <= SOCK_SEQPACKET; type += SOCK_SEQPACKET - SOCK_STREAM) {
    l = UnixListener(type, 0, &ua, &ulen, type == SOCK_STREAM ? "con" : "sqcon");
    int first = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
    if (connect(first, (struct sockaddr*)&ua, ulen) != 0) die("first connect");
    // Our own accepts (which end the wait) must not block.
    if (fcntl(l, F_SETFL, O_NONBLOCK) != 0) die("fcntl");
    int c = socket(AF_UNIX, type, 0);
    w = Add(type == SOCK_STREAM ? "unix-stream connect" : "unix-seqpacket connect", CONNECT, c,
            l, 0, Connect);
    w->addr = ua;
    w->addrlen = ulen;
  }

  for (int i = 0; i < nw; ++i) {
    if (pthread_create(&ws[i].thread, NULL, Run, &ws[i]) != 0) die("pthread_create");
  }
  double t0 = Now();
  for (int i = 0; i < nw; ++i) {
    while (!ws[i].tid || ThreadState(ws[i].tid) != 'S') {
      if (__atomic_load_n(&ws[i].done, __ATOMIC_ACQUIRE)) {
        printf("FAIL %s: returned without blocking: rc=%ld %s\n", ws[i].name, ws[i].rc,
               strerror(ws[i].err));
        return 1;
      }
      if (Now() - t0 > 20) {
        printf("FAIL %s: never blocked\n", ws[i].name);
        return 1;
      }
      usleep(1000);
    }
  }
  printf("ready %d\n", nw);

  char line[64];
  if (!fgets(line, sizeof(line), stdin)) return 1;
  int bad = 0;
  for (int i = 0; i < nw; ++i) {
    if (__atomic_load_n(&ws[i].done, __ATOMIC_ACQUIRE)) {
      printf("FAIL %s: returned before its peer acted: rc=%ld %s\n", ws[i].name, ws[i].rc,
             strerror(ws[i].err));
      ++bad;
    }
  }
  // End every wait, then collect.
  for (int i = 0; i < nw; ++i) {
    struct Waiter* x = &ws[i];
    switch (x->kind) {
      case RECV:
        if (send(x->peer, "d", 1, 0) != 1) die("send to a receiver");
        break;
      case ACCEPT: {
        int dom = ((struct sockaddr*)&x->addr)->sa_family;
        int type = strstr(x->name, "seqpacket") ? SOCK_SEQPACKET : SOCK_STREAM;
        int c = socket(dom, type | SOCK_NONBLOCK, 0);
        if (connect(c, (struct sockaddr*)&x->addr, x->addrlen) != 0 && errno != EINPROGRESS)
          die("connect to an acceptor");
        break;
      }
      case CONNECT:
      case SEND:
        break;  // below, until the call returns
    }
  }
  t0 = Now();
  for (int i = 0; i < nw; ++i) {
    struct Waiter* x = &ws[i];
    while (!__atomic_load_n(&x->done, __ATOMIC_ACQUIRE) && Now() - t0 < 20) {
      if (x->kind == SEND) Drain(x->peer);
      if (x->kind == CONNECT) {
        int a = accept4(x->peer, NULL, NULL, 0);
        if (a >= 0) close(a);
      }
      usleep(2000);
    }
    if (!__atomic_load_n(&x->done, __ATOMIC_ACQUIRE)) {
      printf("FAIL %s: still blocked after its peer acted\n", x->name);
      ++bad;
      continue;
    }
    pthread_join(x->thread, NULL);
    int right = x->want == -1 ? x->rc >= 0 : x->rc == x->want;
    if (!right) {
      printf("FAIL %s: rc=%ld (%s), want %ld\n", x->name, x->rc,
             x->rc < 0 ? strerror(x->err) : "no error", x->want);
      ++bad;
    }
  }
  printf("done %d %s\n", nw, bad ? "FAILED" : "ok");
  fflush(stdout);
  _exit(bad ? 1 : 0);
}
