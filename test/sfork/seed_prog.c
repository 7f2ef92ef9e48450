// A guest for the sandbox-fork tests: reads one command per line on stdin
// (blocked in read(2) while its sandbox is paused and forked) and answers on
// stdout:
//   write S    keep S in a heap buffer          -> ok
//   read       the buffer                       -> S
//   rand       16 getrandom() bytes, hex        -> 32 hex digits
//   urandom    16 bytes of /dev/urandom, hex    -> 32 hex digits
//   mxcsr      the SSE control register (set to 0x7f80 at start)
//   pid        getpid() and getppid()
//   trace      fork a child and hold it in a ptrace-stop (SEIZE, INTERRUPT)
//   untrace    kill and reap that child
//   gen        /proc/seedvisor/fork_generation (opened at start), from offset 0
//   genpoll    1 if that fd polls readable now, else 0
//   exit N     _exit(N)
//   seccomp    install a seccomp filter: getpgid(0x5eed) fails with errno 77
//                                                          -> ok
//   scchk      "errno=E filters=N": getpgid(0x5eed)'s errno and the
//              Seccomp_filters line of /proc/self/status
//   advise     two pages holding 'd' and 'w', one MADV_DONTFORK and one
//              MADV_WIPEONFORK                              -> ok
//   advised    what they hold: "d=<first byte> w=<first byte>" (a byte 0
//              reads as 0)
//   wfile P S  write S into file P (created, truncated)   -> ok | err ERRNO
//   rfile P    the content of file P                     -> S | err ERRNO
//   mfile P S  write S at the start of P through a MAP_SHARED mapping -> ok
//   objs       make kernel objects with host state behind them, each with
//              something pending: a timerfd that expired (one unread tick)
//              and a periodic one, a signalfd with SIGUSR1 pending, a pidfd
//              of an exited child, an inotify instance with an event queued,
//              an epoll instance over those four (+ a fired EPOLLONESHOT
//              registration of the timerfd's dup)  -> ok
//              and a pty whose master has the replica's "hi" waiting, a
//              netlink route socket with a RTM_GETLINK reply waiting
//   chk        what they hold, consuming it: "ep=N tfd=T per=P sfd=SIG
//              pid=R ino=MASK pty=BYTES nl=TYPE" (epoll_wait count first)
//   usock      unix sockets holding queued state: a stream socketpair with
//              "x" and then "y" + an SCM_RIGHTS pipe holding "q" queued on
//              one end, a listener with a pending connection that sent
//              "c"; both polled once (their readiness objects)  -> ok
//   uchk       what they hold, consuming it: "in=1 data=xy fd=q acc=c
//              lsn=1" (in/lsn: POLLIN before reading; "-" where empty)
//   uput S     queue S on the socketpair and connect a new client that
//              sends S to the listener                           -> ok
//   ublock     a child process blocked in recv(2) on a seqpacket socket
//              (what it receives it answers: "got S")            -> ok
//   uwake S    send S to that child                    -> (the child) got S
//   inet       an AF_INET UDP socket bound to 127.0.0.1         -> ok
//   close      closes what usock and inet made                   -> ok
//   pwrite S   write S into a guest pipe made at start  -> ok
//   pread      what that pipe holds (non-blocking)      -> S | empty
//   ppoll      1 if its read end polls readable, else 0 (polling makes the
//              pipe's host readiness object, which a fork must not share)
//   eadd N     add N to an eventfd made at start        -> ok
//   eread      its counter, reset to 0 (non-blocking)   -> N | empty
//   helpers    start a thread (MXCSR 0x5f80) and a child process (MXCSR
//              0x3f80), each blocked in sigsuspend(2)  -> ok
//   thread     (answered by the thread) its MXCSR and the heap buffer
//   child      (answered by the child) its MXCSR and getppid()
//   sset S     write S into the three shared regions made at start (shared
//              anonymous memory, a memfd mapped MAP_SHARED, a SysV shm
//              segment; the helper child inherits them)  -> ok
//   sget       what they hold                           -> "A M S"
//   cshared    (answered by the child) what they hold, then it puts "c-"
//              in front of each                         -> "A M S"
//   shm2 S     attach a second SysV segment (made at start, not attached
//              at a pause), replace its text by S, detach  -> the old text
//   mqput S P  send S with priority P on a POSIX message queue kept open
//              (made and polled on first use: its readiness object) -> ok
//   mqget      every message it holds, best priority first: "S1,S2" | empty
//   mqpoll     1 if it polls readable, else 0
//   mqname S   a second queue holding S, closed again (only its name
//              keeps it)                                   -> ok
//   mqnget     that queue's message                        -> S | empty
//   forks      fork children that wait until fork is refused (at most
//              200)                     -> "forks: N, then EAGAIN|stopped"
//   unforks    end those children and reap them            -> ok
//   vwait, vwake I   a thread in futex_waitv(2) (seed_waitv.c)
#define _GNU_SOURCE
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <sys/shm.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "test/sfork/seed_waitv.h"

static char* buf;

static void reply(const char* s) {
  char line[512];
  int n = snprintf(line, sizeof(line), "%s\n", s);
  if (write(1, line, (size_t)n) != n) _exit(99);
}

// `forks` and `unforks`: children held at a pipe.
enum { kMaxHeld = 200 };
static pid_t held[kMaxHeld];
static int nheld;
static int held_gate[2] = {-1, -1};

static void forks(void) {
  if (held_gate[0] < 0 && pipe(held_gate) != 0) {
    reply("err");
    return;
  }
  int err = 0;
  while (nheld < kMaxHeld) {
    pid_t p = fork();
    if (p == 0) {
      char c;
      close(held_gate[1]);
      (void)!read(held_gate[0], &c, 1);
      _exit(0);
    }
    if (p < 0) {
      err = errno;
      break;
    }
    held[nheld++] = p;
  }
  char buf[64];
  snprintf(buf, sizeof buf, "forks: %d, then %s", nheld,
           err == 0 ? "stopped" : err == EAGAIN ? "EAGAIN" : strerror(err));
  reply(buf);
}

static void unforks(void) {
  if (held_gate[0] >= 0) {
    close(held_gate[0]);
    close(held_gate[1]);
    held_gate[0] = held_gate[1] = -1;
  }
  for (int i = 0; i < nheld; ++i) waitpid(held[i], NULL, 0);
  nheld = 0;
  reply("ok");
}

static void reply_err(void) {
  char out[32];
  snprintf(out, sizeof(out), "err %d", errno);
  reply(out);
}

// A guest's own seccomp filter: getpgid(0x5eed) is errno 77, the rest allowed.
static int install_seccomp(void) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpgid, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x5eed, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 77),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog p = {sizeof(f) / sizeof(f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p);
}

// The value of KEY in /proc/self/status ("?" without one); a static buffer.
static const char* status_value(const char* key) {
  static char v[64];
  char all[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, all, sizeof(all) - 1);
  if (fd >= 0) close(fd);
  strcpy(v, "?");
  if (n <= 0) return v;
  all[n] = 0;
  char* at = strstr(all, key);
  if (at == NULL || at[strlen(key)] != ':') return v;
  at += strlen(key) + 1;
  while (*at == '\t' || *at == ' ') at++;
  size_t len = strcspn(at, "\n");
  if (len >= sizeof(v)) len = sizeof(v) - 1;
  memcpy(v, at, len);
  v[len] = 0;
  return v;
}

// "P S" -> P (NUL-terminated in place) and S.
static char* split(char* arg) {
  char* sp = strchr(arg, ' ');
  if (sp == NULL) return arg + strlen(arg);
  *sp = 0;
  return sp + 1;
}

static void wfile(char* arg) {
  char* text = split(arg);
  int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return reply_err();
  ssize_t n = write(fd, text, strlen(text));
  if (n != (ssize_t)strlen(text)) return reply_err();
  close(fd);
  reply("ok");
}

static void rfile(const char* path) {
  char data[400];
  int fd = open(path, O_RDONLY);
  if (fd < 0) return reply_err();
  ssize_t n = read(fd, data, sizeof(data) - 1);
  close(fd);
  if (n < 0) return reply_err();
  data[n] = 0;
  reply(data);
}

static void mfile(char* arg) {
  char* text = split(arg);
  int fd = open(arg, O_RDWR);
  if (fd < 0) return reply_err();
  char* m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return reply_err();
  memcpy(m, text, strlen(text));
  munmap(m, 4096);
  reply("ok");
}

static int tfd = -1, per = -1, sfd = -1, pfd = -1, ifd = -1, epfd = -1;
static int ptm = -1, pts = -1, nl = -1, usv[2] = {-1, -1}, inet = -1;
static int ulsn = -1;

static const struct sockaddr_un kLsnAddr = {AF_UNIX, "\0seed-prog-listener"};
static const socklen_t kLsnLen = offsetof(struct sockaddr_un, sun_path) + 20;

// A client of the listener that sends `s`; the client stays open.
static int uconnect(const char* s) {
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  if (c < 0 || connect(c, (const struct sockaddr*)&kLsnAddr, kLsnLen) != 0) return -1;
  return write(c, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
}

static void usock(void) {
  int qp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, usv) != 0 || write(usv[0], "x", 1) != 1 ||
      pipe(qp) != 0 || write(qp[1], "q", 1) != 1) {
    return reply_err();
  }
  char cbuf[CMSG_SPACE(sizeof(int))] = {0};
  struct iovec iov = {"y", 1};
  struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                     .msg_controllen = sizeof(cbuf)};
  struct cmsghdr* c = CMSG_FIRSTHDR(&h);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &qp[0], sizeof(int));
  if (sendmsg(usv[0], &h, 0) != 1) return reply_err();
  close(qp[0]);
  close(qp[1]);
  ulsn = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (ulsn < 0 || bind(ulsn, (const struct sockaddr*)&kLsnAddr, kLsnLen) != 0 ||
      listen(ulsn, 4) != 0 || uconnect("c") != 0) {
    return reply_err();
  }
  struct pollfd p[2] = {{usv[1], POLLIN, 0}, {ulsn, POLLIN, 0}};
  reply(poll(p, 2, 0) == 2 ? "ok" : "err poll");
}

static int ubv[2] = {-1, -1};

static void ublock(void) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, ubv) != 0) return reply_err();
  pid_t pid = fork();
  if (pid < 0) return reply_err();
  if (pid == 0) {
    for (;;) {
      char b[64], out[96];
      ssize_t k = recv(ubv[1], b, sizeof(b) - 1, 0);
      if (k <= 0) _exit(0);
      b[k] = 0;
      snprintf(out, sizeof(out), "got %s", b);
      reply(out);
    }
  }
  reply("ok");
}

static void uchk(void) {
  struct pollfd p[2] = {{usv[1], POLLIN, 0}, {ulsn, POLLIN, 0}};
  poll(p, 2, 0);
  char data[64] = "", fdata[16] = "-", acc[64] = "-";
  size_t n = 0;
  for (;;) {
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {data + n, sizeof(data) - 1 - n};
    struct msghdr h = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof(cbuf)};
    ssize_t k = recvmsg(usv[1], &h, MSG_DONTWAIT);
    if (k <= 0) break;
    n += (size_t)k;
    struct cmsghdr* c = CMSG_FIRSTHDR(&h);
    if (c != NULL && c->cmsg_type == SCM_RIGHTS) {
      int fd;
      memcpy(&fd, CMSG_DATA(c), sizeof(int));
      ssize_t f = read(fd, fdata, sizeof(fdata) - 1);
      fdata[f > 0 ? f : 0] = 0;
      close(fd);
    }
  }
  data[n] = 0;
  size_t an = 0;
  int a;
  while ((a = accept(ulsn, NULL, NULL)) >= 0) {
    ssize_t k = read(a, acc + an, sizeof(acc) - 1 - an);
    if (k > 0) an += (size_t)k;
    close(a);
  }
  if (an > 0) acc[an] = 0;
  char msg[192];
  snprintf(msg, sizeof(msg), "in=%d data=%s fd=%s acc=%s lsn=%d", (p[0].revents & POLLIN) != 0,
           n ? data : "-", fdata, acc, (p[1].revents & POLLIN) != 0);
  reply(msg);
}

static int make_pty_and_netlink(void) {
  ptm = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK);
  int unlock = 0, n = -1;
  if (ptm < 0 || ioctl(ptm, TIOCSPTLCK, &unlock) != 0 || ioctl(ptm, TIOCGPTN, &n) != 0) return -1;
  char name[32];
  snprintf(name, sizeof(name), "/dev/pts/%d", n);
  pts = open(name, O_RDWR | O_NOCTTY);
  if (pts < 0 || write(pts, "hi", 2) != 2) return -2;
  nl = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE);
  struct {
    struct nlmsghdr h;
    struct rtgenmsg g;
  } req = {{sizeof(req), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0}, {AF_UNSPEC}};
  if (nl < 0 || send(nl, &req, sizeof(req), 0) != sizeof(req)) return -3;
  return 0;
}

static void objs(void) {
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec its = {{0, 0}, {0, 1000000}};  // 1 ms, once
  timerfd_settime(tfd, 0, &its, NULL);
  per = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec pits = {{3600, 0}, {3600, 0}};  // hourly: never fires here
  timerfd_settime(per, 0, &pits, NULL);
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  sigprocmask(SIG_BLOCK, &m, NULL);
  sfd = signalfd(-1, &m, SFD_NONBLOCK);
  raise(SIGUSR1);
  pid_t c = fork();
  if (c == 0) _exit(7);
  pfd = (int)syscall(SYS_pidfd_open, c, 0);
  ifd = inotify_init1(IN_NONBLOCK);
  inotify_add_watch(ifd, "/tmp", IN_CREATE);
  close(open("/tmp/created", O_WRONLY | O_CREAT, 0644));
  epfd = epoll_create1(0);
  int fds[4] = {tfd, sfd, pfd, ifd};
  for (int i = 0; i < 4; ++i) {
    struct epoll_event e = {.events = EPOLLIN, .data.fd = fds[i]};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &e);
  }
  int pn = make_pty_and_netlink();
  if (pn != 0) {
    char msg[64];
    snprintf(msg, sizeof(msg), "pty/netlink failed (%d, errno %d)", pn, errno);
    return reply(msg);
  }
  int dup_tfd = dup(tfd);
  struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = dup_tfd};
  epoll_ctl(epfd, EPOLL_CTL_ADD, dup_tfd, &e);
  struct pollfd p = {pfd, POLLIN, 0};
  poll(&p, 1, 5000);  // the child has exited
  struct timespec ms = {0, 20000000};
  nanosleep(&ms, NULL);  // the timer has expired
  struct epoll_event out[8];
  int n = epoll_wait(epfd, out, 8, 0);  // fires (and disables) the ONESHOT one
  if (tfd < 0 || per < 0 || sfd < 0 || pfd < 0 || ifd < 0 || epfd < 0 || n != 5) {
    char msg[64];
    snprintf(msg, sizeof(msg), "objs failed (epoll %d)", n);
    return reply(msg);
  }
  reply("ok");
}

static void chk(void) {
  struct epoll_event out[8];
  int ep = epoll_wait(epfd, out, 8, 0);
  uint64_t ticks = 0;
  if (read(tfd, &ticks, sizeof(ticks)) != sizeof(ticks)) ticks = 0;
  struct itimerspec cur;
  timerfd_gettime(per, &cur);
  struct signalfd_siginfo si;
  int sig = read(sfd, &si, sizeof(si)) == sizeof(si) ? (int)si.ssi_signo : 0;
  struct pollfd p = {pfd, POLLIN, 0};
  int dead = poll(&p, 1, 0);
  char ev[512];
  ssize_t n = read(ifd, ev, sizeof(ev));
  unsigned mask = n >= (ssize_t)sizeof(struct inotify_event) ? ((struct inotify_event*)ev)->mask : 0;
  struct pollfd pp = {ptm, POLLIN, 0};
  int pty_ready = poll(&pp, 1, 0);
  ssize_t pty_n = read(ptm, ev, sizeof(ev));
  struct pollfd np = {nl, POLLIN, 0};
  int nl_ready = poll(&np, 1, 0);
  char nlbuf[65536];
  int nl_type = 0;
  if (nl_ready == 1) {
    ssize_t k = recv(nl, nlbuf, sizeof(nlbuf), 0);
    if (k >= (ssize_t)sizeof(struct nlmsghdr)) nl_type = ((struct nlmsghdr*)nlbuf)->nlmsg_type;
    while (recv(nl, nlbuf, sizeof(nlbuf), 0) > 0) {  // the rest of the dump
    }
  }
  char msg[192];
  snprintf(msg, sizeof(msg), "ep=%d tfd=%llu per=%s sfd=%d pid=%d ino=%#x pty=%d/%zd nl=%d", ep,
           (unsigned long long)ticks,
           cur.it_interval.tv_sec == 3600 && cur.it_value.tv_sec > 3000 ? "armed" : "lost", sig,
           dead, mask, pty_ready, pty_n, nl_type);
  reply(msg);
}

// Shared memory made at start, before the helper child is forked.
static char* shared[3];
static int shm2_id = -1;

static void make_shared(void) {
  shared[0] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int fd = memfd_create("seed", 0);
  if (fd < 0 || ftruncate(fd, 4096) != 0) _exit(94);
  shared[1] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  shared[2] = id < 0 ? MAP_FAILED : shmat(id, NULL, 0);
  if (id >= 0) shmctl(id, IPC_RMID, NULL);  // goes with the last detach
  shm2_id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  char* p2 = shm2_id < 0 ? MAP_FAILED : shmat(shm2_id, NULL, 0);
  if (p2 != MAP_FAILED) {
    strcpy(p2, "seg2-init");
    shmdt(p2);
  }
  for (int i = 0; i < 3; ++i) {
    if (shared[i] == MAP_FAILED) shared[i] = NULL;
    else strcpy(shared[i], "init");
  }
}

static void set_shared(const char* prefix, const char* s) {
  for (int i = 0; i < 3; ++i) {
    if (shared[i] == NULL) continue;
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s%s", prefix, s == NULL ? shared[i] : s);
    strcpy(shared[i], tmp);
  }
}

static void shm2(const char* text) {
  char* p = shmat(shm2_id, NULL, 0);
  if (p == (char*)-1) return reply_err();
  char old[256];
  snprintf(old, sizeof(old), "%s", p);
  snprintf(p, 256, "%s", text);
  shmdt(p);
  reply(old);
}

static void reply_shared(void) {
  char out[512];
  snprintf(out, sizeof(out), "%s %s %s", shared[0] ? shared[0] : "none",
           shared[1] ? shared[1] : "none", shared[2] ? shared[2] : "none");
  reply(out);
}

// The helpers answer on stdout themselves, one line per SIGUSR2; between
// two they wait in sigsuspend(2) (SIGUSR2 blocked otherwise, so none is
// lost): the helpers wait in another syscall than the main thread's
// read(2), and need no file of their own.
static volatile pid_t thread_tid, child_pid;

static volatile int last_sig;
static void on_usr2(int sig) { last_sig = sig; }

static void* serve(void* is_thread) {
  unsigned int mx = is_thread ? 0x5f80 : 0x3f80;
  __asm__ volatile("ldmxcsr %0" : : "m"(mx));
  // Only SIGUSR2 gets through, and only in sigsuspend (objs' SIGUSR1 is
  // the main thread's).
  sigset_t all, wait_set;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, NULL);
  sigfillset(&wait_set);
  sigdelset(&wait_set, SIGUSR2);
  sigdelset(&wait_set, SIGRTMIN);
  if (is_thread) thread_tid = (pid_t)syscall(SYS_gettid);
  for (;;) {
    sigsuspend(&wait_set);
    if (last_sig == SIGRTMIN) {
      reply_shared();
      set_shared("c-", NULL);
      continue;
    }
    unsigned int v = 0;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    char out[512];
    if (is_thread) {
      snprintf(out, sizeof(out), "%#x %s", v, buf);
    } else {
      snprintf(out, sizeof(out), "%#x %d", v, (int)getppid());
    }
    reply(out);
  }
  return NULL;
}

static void helpers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);
  sigaction(SIGRTMIN, &sa, NULL);
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  sigaddset(&usr2, SIGRTMIN);
  sigprocmask(SIG_BLOCK, &usr2, NULL);  // inherited by both helpers
  pthread_t t;
  if (pthread_create(&t, NULL, serve, (void*)1) != 0) return reply("err thread");
  while (thread_tid == 0) usleep(1000);
  pid_t pid = fork();
  if (pid < 0) return reply_err();
  if (pid == 0) serve(NULL);
  child_pid = pid;
  reply("ok");
}

static void hex(const unsigned char* b, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i) sprintf(out + 2 * i, "%02x", b[i]);
}

static char* advised;  // the pages of "advise"

int main(void) {
  buf = malloc(4096);
  strcpy(buf, "initial");
  unsigned int mx = 0x7f80;
  __asm__ volatile("ldmxcsr %0" : : "m"(mx));
  make_shared();
  int gen_fd = open("/proc/seedvisor/fork_generation", O_RDONLY);
  int pfd[2];
  if (pipe2(pfd, O_NONBLOCK) != 0) _exit(96);
  int efd = eventfd(0, EFD_NONBLOCK);
  if (efd < 0) _exit(95);
  mqd_t mq = -1;
  char line[512];
  size_t len = 0;
  pid_t traced_pid = 0;
  int stdin_ep = -1;  // "epstdin": wait for stdin in an epoll instance
  for (;;) {
    if (stdin_ep >= 0) {
      struct epoll_event ready;
      int r;
      do {
        r = epoll_wait(stdin_ep, &ready, 1, -1);
      } while (r < 0 && errno == EINTR);
      if (r != 1) return 4;
    }
    ssize_t n = read(0, line + len, 1);
    if (n <= 0) return 3;
    if (line[len] != '\n' && len < sizeof(line) - 2) {
      ++len;
      continue;
    }
    line[len] = 0;
    len = 0;
    char out[256];
    if (strncmp(line, "write ", 6) == 0) {
      snprintf(buf, 4096, "%s", line + 6);
      reply("ok");
    } else if (strcmp(line, "read") == 0) {
      reply(buf);
    } else if (strcmp(line, "epstdin") == 0) {
      struct epoll_event ev = {.events = EPOLLIN};
      stdin_ep = epoll_create1(EPOLL_CLOEXEC);
      if (stdin_ep < 0 || epoll_ctl(stdin_ep, EPOLL_CTL_ADD, 0, &ev) != 0) {
        reply_err();
        stdin_ep = -1;
      } else {
        reply("ok");
      }
    } else if (strcmp(line, "advise") == 0) {
      advised = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (advised == MAP_FAILED) _exit(94);
      advised[0] = 'd';
      advised[4096] = 'w';
      if (madvise(advised, 4096, MADV_DONTFORK) != 0 ||
          madvise(advised + 4096, 4096, MADV_WIPEONFORK) != 0) {
        reply_err();
      } else {
        reply("ok");
      }
    } else if (strcmp(line, "advised") == 0) {
      snprintf(out, sizeof(out), "d=%c w=%c", advised[0] ? advised[0] : '0',
               advised[4096] ? advised[4096] : '0');
      reply(out);
    } else if (strcmp(line, "rand") == 0) {
      unsigned char r[16];
      if (getrandom(r, sizeof(r), 0) != sizeof(r)) _exit(98);
      hex(r, sizeof(r), out);
      reply(out);
    } else if (strcmp(line, "urandom") == 0) {
      unsigned char r[16];
      int fd = open("/dev/urandom", O_RDONLY);
      if (fd < 0 || read(fd, r, sizeof(r)) != sizeof(r)) _exit(97);
      close(fd);
      hex(r, sizeof(r), out);
      reply(out);
    } else if (strcmp(line, "mxcsr") == 0) {
      unsigned int v = 0;
      __asm__ volatile("stmxcsr %0" : "=m"(v));
      snprintf(out, sizeof(out), "%#x", v);
      reply(out);
    } else if (strcmp(line, "seccomp") == 0) {
      reply(install_seccomp() == 0 ? "ok" : "err");
    } else if (strcmp(line, "scchk") == 0) {
      errno = 0;
      syscall(SYS_getpgid, 0x5eed);
      int e = errno;
      snprintf(out, sizeof(out), "errno=%d filters=%s", e, status_value("Seccomp_filters"));
      reply(out);
    } else if (strcmp(line, "pid") == 0) {
      snprintf(out, sizeof(out), "%d %d", (int)getpid(), (int)getppid());
      reply(out);
    } else if (strncmp(line, "wfile ", 6) == 0) {
      wfile(line + 6);
    } else if (strncmp(line, "rfile ", 6) == 0) {
      rfile(line + 6);
    } else if (strncmp(line, "mfile ", 6) == 0) {
      mfile(line + 6);
    } else if (strcmp(line, "gen") == 0) {
      char g[32] = {0};
      ssize_t k = pread(gen_fd, g, sizeof(g) - 1, 0);
      if (k > 0 && g[k - 1] == '\n') g[k - 1] = 0;
      reply(k > 0 ? g : "none");
    } else if (strcmp(line, "genpoll") == 0) {
      struct pollfd p = {gen_fd, POLLIN, 0};
      reply(poll(&p, 1, 0) == 1 && (p.revents & POLLIN) ? "1" : "0");
    } else if (strcmp(line, "objs") == 0) {
      objs();
    } else if (strcmp(line, "chk") == 0) {
      chk();
    } else if (strcmp(line, "usock") == 0) {
      usock();
    } else if (strcmp(line, "uchk") == 0) {
      uchk();
    } else if (strcmp(line, "ublock") == 0) {
      ublock();
    } else if (strncmp(line, "uwake ", 6) == 0) {
      if (send(ubv[0], line + 6, strlen(line + 6), 0) < 0) reply_err();
    } else if (strncmp(line, "uput ", 5) == 0) {
      size_t k = strlen(line + 5);
      reply(write(usv[0], line + 5, k) == (ssize_t)k && uconnect(line + 5) == 0 ? "ok" : "err");
    } else if (strcmp(line, "inet") == 0) {
      struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
      inet = socket(AF_INET, SOCK_DGRAM, 0);
      if (inet < 0 || bind(inet, (struct sockaddr*)&a, sizeof(a)) != 0) reply_err();
      else reply("ok");
    } else if (strcmp(line, "close") == 0) {
      close(usv[0]);
      close(usv[1]);
      close(inet);
      reply("ok");
    } else if (strncmp(line, "pwrite ", 7) == 0) {
      size_t k = strlen(line + 7);
      reply(write(pfd[1], line + 7, k) == (ssize_t)k ? "ok" : "err");
    } else if (strcmp(line, "pread") == 0) {
      char data[400];
      ssize_t k = read(pfd[0], data, sizeof(data) - 1);
      if (k > 0) data[k] = 0;
      reply(k > 0 ? data : "empty");
    } else if (strcmp(line, "ppoll") == 0) {
      struct pollfd p = {pfd[0], POLLIN, 0};
      reply(poll(&p, 1, 0) == 1 && (p.revents & POLLIN) ? "1" : "0");
    } else if (strncmp(line, "eadd ", 5) == 0) {
      uint64_t v = strtoull(line + 5, NULL, 10);
      reply(write(efd, &v, 8) == 8 ? "ok" : "err");
    } else if (strcmp(line, "eread") == 0) {
      uint64_t v = 0;
      if (read(efd, &v, 8) != 8) {
        reply("empty");
      } else {
        snprintf(out, sizeof(out), "%llu", (unsigned long long)v);
        reply(out);
      }
    } else if (strncmp(line, "mqput ", 6) == 0) {
      char text[128];
      unsigned prio = 0;
      if (sscanf(line + 6, "%127s %u", text, &prio) != 2) {
        reply("?");
        continue;
      }
      if (mq < 0) {
        mq_unlink("/seedq");
        mq = mq_open("/seedq", O_RDWR | O_CREAT | O_NONBLOCK, 0600, NULL);
        struct pollfd p = {mq, POLLIN, 0};
        if (mq < 0 || poll(&p, 1, 0) != 0) {
          reply_err();
          continue;
        }
      }
      reply(mq_send(mq, text, strlen(text), prio) == 0 ? "ok" : "err");
    } else if (strcmp(line, "mqget") == 0) {
      char msg[8192 + 1];
      out[0] = 0;
      ssize_t k;
      while (mq >= 0 && (k = mq_receive(mq, msg, 8192, NULL)) >= 0) {
        msg[k] = 0;
        if (out[0]) strcat(out, ",");
        strncat(out, msg, sizeof(out) - strlen(out) - 2);
      }
      reply(out[0] ? out : "empty");
    } else if (strcmp(line, "mqpoll") == 0) {
      struct pollfd p = {mq, POLLIN, 0};
      reply(poll(&p, 1, 0) == 1 && (p.revents & POLLIN) ? "1" : "0");
    } else if (strncmp(line, "mqname ", 7) == 0) {
      mq_unlink("/seedq2");
      mqd_t q = mq_open("/seedq2", O_RDWR | O_CREAT, 0600, NULL);
      int r = q >= 0 ? mq_send(q, line + 7, strlen(line + 7), 1) : -1;
      if (q >= 0) mq_close(q);
      reply(r == 0 ? "ok" : "err");
    } else if (strcmp(line, "mqnget") == 0) {
      char msg[8192 + 1];
      mqd_t q = mq_open("/seedq2", O_RDONLY | O_NONBLOCK);
      ssize_t k = q >= 0 ? mq_receive(q, msg, 8192, NULL) : -1;
      if (q >= 0) mq_close(q);
      if (k >= 0) msg[k] = 0;
      reply(k >= 0 ? msg : "empty");
    } else if (strncmp(line, "keyput ", 7) == 0) {
      // A user key in the session keyring (keyrings(7): sentry memory).
      long id = syscall(SYS_add_key, "user", "seedkey", line + 7, strlen(line + 7), -3);
      reply(id > 0 ? "ok" : "err");
    } else if (strcmp(line, "keyget") == 0) {
      char key[128];
      long id = syscall(SYS_request_key, "user", "seedkey", NULL, 0);
      long n = id > 0 ? syscall(SYS_keyctl, 11 /* KEYCTL_READ */, id, key, sizeof(key) - 1) : -1;
      if (n >= 0 && n < (long)sizeof(key)) key[n] = 0;
      reply(n >= 0 && n < (long)sizeof(key) ? key : "none");
    } else if (strcmp(line, "helpers") == 0) {
      helpers();
    } else if (strcmp(line, "thread") == 0) {
      if (thread_tid == 0 || syscall(SYS_tgkill, getpid(), thread_tid, SIGUSR2) != 0) reply("none");
    } else if (strncmp(line, "sset ", 5) == 0) {
      set_shared("", line + 5);
      reply("ok");
    } else if (strncmp(line, "shm2 ", 5) == 0) {
      shm2(line + 5);
    } else if (strcmp(line, "sget") == 0) {
      reply_shared();
    } else if (strcmp(line, "cshared") == 0) {
      if (child_pid == 0 || kill(child_pid, SIGRTMIN) != 0) reply("none");
    } else if (strcmp(line, "child") == 0) {
      if (child_pid == 0 || kill(child_pid, SIGUSR2) != 0) reply("none");
    } else if (strcmp(line, "trace") == 0) {
      // A child of ours, seized and held in a ptrace-stop.
      traced_pid = fork();
      if (traced_pid == 0) {
        for (;;) pause();
      }
      int st;
      if (ptrace(PTRACE_SEIZE, traced_pid, 0, 0) != 0 ||
          ptrace(PTRACE_INTERRUPT, traced_pid, 0, 0) != 0 ||
          waitpid(traced_pid, &st, __WALL) != traced_pid || !WIFSTOPPED(st)) {
        reply("err");
      } else {
        reply("ok");
      }
    } else if (strcmp(line, "untrace") == 0) {
      int st;
      if (traced_pid <= 0 || kill(traced_pid, SIGKILL) != 0 ||
          waitpid(traced_pid, &st, __WALL) != traced_pid) {
        reply("err");
      } else {
        traced_pid = 0;
        reply("ok");
      }
    } else if (strcmp(line, "forks") == 0) {
      forks();
    } else if (strcmp(line, "unforks") == 0) {
      unforks();
    } else if (waitv_command(line, reply)) {
    } else if (strncmp(line, "exit ", 5) == 0) {
      _exit(atoi(line + 5));
    } else {
      reply("?");
    }
  }
}
