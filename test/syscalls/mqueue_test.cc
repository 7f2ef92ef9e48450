// POSIX message queues (mq_overview(7)) as Linux's ipc/mqueue.c does them:
// names, O_CREAT/O_EXCL, attribute limits, permissions, priorities,
// blocking with absolute CLOCK_REALTIME timeouts, O_NONBLOCK, signals,
// mq_notify (SIGEV_SIGNAL, SIGEV_NONE, glibc's SIGEV_THREAD), the status
// line read(2) gives, poll/epoll readiness, close-on-exec, fork,
// RLIMIT_MSGQUEUE, queues_max, /proc/sys/fs/mqueue and the mqueue
// filesystem.
//
// Natively this host's root lacks CAP_SYS_RESOURCE while the sandbox's has
// it: the limit cases run as nobody, where both agree.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <mqueue.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr long kMqueueMagic = 0x19800202;

// A queue name unique to this process and test.
std::string Name(const char* tag) { return "/sv_mq_" + std::to_string(getpid()) + "_" + tag; }

// An open queue, unlinked and closed at scope end.
struct Queue {
  std::string name;
  mqd_t q = -1;
  Queue(const char* tag, int flags, long maxmsg = 0, long msgsize = 0, mode_t mode = 0600)
      : name(Name(tag)) {
    mq_unlink(name.c_str());
    mq_attr a{};
    a.mq_maxmsg = maxmsg;
    a.mq_msgsize = msgsize;
    q = mq_open(name.c_str(), flags | O_CREAT, mode, maxmsg ? &a : nullptr);
  }
  ~Queue() {
    if (q >= 0) mq_close(q);
    mq_unlink(name.c_str());
  }
};

timespec InMs(long ms) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += (ms % 1000) * 1000000L;
  ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  return ts;
}

std::string StatusLine(mqd_t q) {
  char buf[128] = {};
  ssize_t n = pread(q, buf, sizeof(buf) - 1, 0);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

std::string Padded(const char* key, long v, int width) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%s:%-*ld", key, width, v);
  return buf;
}

// ---- mq_open ----

TEST(MqueueTest, OpenNamesAndFlags) {
  std::string n = Name("open");
  mq_unlink(n.c_str());
  EXPECT_ERRNO(ENOENT, mq_open(n.c_str(), O_RDWR));
  mqd_t q = mq_open(n.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, nullptr);
  ASSERT_GE(q, 0);
  EXPECT_ERRNO(EEXIST, mq_open(n.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, nullptr));
  mqd_t q2 = mq_open(n.c_str(), O_RDWR | O_CREAT, 0600, nullptr);  // exists: opened
  EXPECT_GE(q2, 0);
  mq_close(q2);
  // O_ACCMODE 3 on an existing queue.
  EXPECT_ERRNO(EINVAL, mq_open(n.c_str(), O_RDWR | O_WRONLY));
  // glibc wants one leading '/'; the kernel gets the rest, where '/', "."
  // and ".." are EACCES and an empty name ENOENT.
  EXPECT_ERRNO(EINVAL, mq_open("noslash", O_RDWR | O_CREAT, 0600, nullptr));
  EXPECT_ERRNO(EACCES, syscall(SYS_mq_open, "a/b", O_RDWR | O_CREAT, 0600, nullptr));
  EXPECT_ERRNO(EACCES, syscall(SYS_mq_open, n.c_str(), O_RDWR, 0, nullptr));  // "/sv..."
  EXPECT_ERRNO(EACCES, syscall(SYS_mq_open, ".", O_RDWR | O_CREAT, 0600, nullptr));
  EXPECT_ERRNO(EACCES, syscall(SYS_mq_open, "..", O_RDWR, 0, nullptr));
  EXPECT_ERRNO(ENOENT, syscall(SYS_mq_open, "", O_RDWR | O_CREAT, 0600, nullptr));
  EXPECT_ERRNO(EFAULT, syscall(SYS_mq_open, nullptr, O_RDWR, 0, nullptr));
  // NAME_MAX after the slash.
  std::string longest = "/" + std::string(255, 'm');
  std::string too_long = "/" + std::string(256, 'm');
  mq_unlink(longest.c_str());
  mqd_t ql = mq_open(longest.c_str(), O_RDWR | O_CREAT, 0600, nullptr);
  EXPECT_GE(ql, 0);
  mq_close(ql);
  EXPECT_EQ(mq_unlink(longest.c_str()), 0);
  EXPECT_ERRNO(ENAMETOOLONG, mq_open(too_long.c_str(), O_RDWR | O_CREAT, 0600, nullptr));
  std::string huge = "/" + std::string(5000, 'm');
  EXPECT_ERRNO(ENAMETOOLONG, mq_open(huge.c_str(), O_RDWR | O_CREAT, 0600, nullptr));
  // F_GETFL shows the access mode; the status of a new queue.
  EXPECT_EQ(fcntl(q, F_GETFL), O_RDWR);
  struct stat st;
  ASSERT_EQ(fstat(q, &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_size, 80);  // FILENT_SIZE
  mq_close(q);
  EXPECT_EQ(mq_unlink(n.c_str()), 0);
  EXPECT_ERRNO(ENOENT, mq_unlink(n.c_str()));
  EXPECT_ERRNO(EINVAL, mq_unlink("noslash"));
}

TEST(MqueueTest, AttributesAndTheirLimits) {
  std::string n = Name("attr");
  mq_unlink(n.c_str());
  mq_attr a{};
  for (auto [maxmsg, msgsize] : {std::pair{0L, 16L}, {4L, 0L}, {-1L, 16L}, {4L, -5L}}) {
    a.mq_maxmsg = maxmsg;
    a.mq_msgsize = msgsize;
    EXPECT_ERRNO(EINVAL, mq_open(n.c_str(), O_RDWR | O_CREAT, 0600, &a));
  }
  // Defaults: min(msg_default, msg_max) and min(msgsize_default, msgsize_max).
  {
    Queue d("attrdef", O_RDWR);
    ASSERT_GE(d.q, 0);
    ASSERT_EQ(mq_getattr(d.q, &a), 0);
    EXPECT_EQ(a.mq_maxmsg, 10);
    EXPECT_EQ(a.mq_msgsize, 8192);
    EXPECT_EQ(a.mq_curmsgs, 0);
    EXPECT_EQ(a.mq_flags, 0);
  }
  {
    Queue s("attrset", O_RDWR | O_NONBLOCK, 3, 100);
    ASSERT_GE(s.q, 0);
    ASSERT_EQ(mq_getattr(s.q, &a), 0);
    EXPECT_EQ(a.mq_maxmsg, 3);
    EXPECT_EQ(a.mq_msgsize, 100);
    EXPECT_EQ(a.mq_flags, O_NONBLOCK);
  }
  // Without CAP_SYS_RESOURCE: msg_max and msgsize_max.
  std::string nn = Name("attrnobody");
  EXPECT_EQ(RunAsNobody([&] {
              mq_attr b{};
              b.mq_maxmsg = 11;
              b.mq_msgsize = 16;
              if (mq_open(nn.c_str(), O_RDWR | O_CREAT, 0600, &b) != -1 || errno != EINVAL) return 1;
              b.mq_maxmsg = 10;
              b.mq_msgsize = 8193;
              if (mq_open(nn.c_str(), O_RDWR | O_CREAT, 0600, &b) != -1 || errno != EINVAL) return 2;
              b.mq_msgsize = 8192;
              mqd_t q = mq_open(nn.c_str(), O_RDWR | O_CREAT, 0600, &b);
              if (q < 0) return 3;
              mq_close(q);
              return mq_unlink(nn.c_str()) == 0 ? 0 : 4;
            }),
            0);
}

TEST(MqueueTest, PermissionsByMode) {
  Queue q("perm", O_RDWR, 0, 0, 0644);
  ASSERT_GE(q.q, 0);
  std::string n = q.name;
  EXPECT_EQ(RunAsNobody([&] {
              if (mq_open(n.c_str(), O_WRONLY) != -1 || errno != EACCES) return 1;
              if (mq_open(n.c_str(), O_RDWR) != -1 || errno != EACCES) return 2;
              mqd_t r = mq_open(n.c_str(), O_RDONLY);
              if (r < 0) return 3;
              // The descriptor's own access mode: no sending through it.
              if (mq_send(r, "x", 1, 0) != -1 || errno != EBADF) return 4;
              // Only the owner may unlink it.
              if (mq_unlink(n.c_str()) != -1 || errno != EACCES) return 5;
              return 0;
            }),
            0);
}

// ---- send and receive ----

TEST(MqueueTest, PrioritiesThenArrivalOrder) {
  Queue q("prio", O_RDWR, 8, 16);
  ASSERT_GE(q.q, 0);
  ASSERT_EQ(mq_send(q.q, "low1", 4, 1), 0);
  ASSERT_EQ(mq_send(q.q, "high", 4, 9), 0);
  ASSERT_EQ(mq_send(q.q, "low2", 4, 1), 0);
  ASSERT_EQ(mq_send(q.q, "zero", 4, 0), 0);
  ASSERT_EQ(mq_send(q.q, "max", 3, 32767), 0);
  EXPECT_ERRNO(EINVAL, mq_send(q.q, "x", 1, 32768));  // MQ_PRIO_MAX
  EXPECT_ERRNO(EMSGSIZE, mq_send(q.q, "12345678901234567", 17, 0));
  mq_attr a{};
  ASSERT_EQ(mq_getattr(q.q, &a), 0);
  EXPECT_EQ(a.mq_curmsgs, 5);
  EXPECT_NE(StatusLine(q.q).find(Padded("QSIZE", 19, 10) + " "), std::string::npos)
      << StatusLine(q.q);
  char buf[16];
  // The buffer must hold the queue's largest message, whatever waits.
  EXPECT_ERRNO(EMSGSIZE, mq_receive(q.q, buf, 15, nullptr));
  const char* want[] = {"max", "high", "low1", "low2", "zero"};
  unsigned prios[] = {32767, 9, 1, 1, 0};
  for (int i = 0; i < 5; ++i) {
    unsigned p = 99;
    ssize_t n = mq_receive(q.q, buf, sizeof(buf), &p);
    ASSERT_EQ(n, static_cast<ssize_t>(strlen(want[i])));
    EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), want[i]);
    EXPECT_EQ(p, prios[i]);
  }
  // Zero-length messages exist.
  ASSERT_EQ(mq_send(q.q, "", 0, 3), 0);
  EXPECT_EQ(mq_receive(q.q, buf, sizeof(buf), nullptr), 0);
  // Not a queue: EBADF.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_ERRNO(EBADF, mq_send(p[1], "x", 1, 0));
  EXPECT_ERRNO(EBADF, mq_receive(p[0], buf, sizeof(buf), nullptr));
  EXPECT_ERRNO(EBADF, mq_getattr(p[0], &a));
  close(p[0]);
  close(p[1]);
}

TEST(MqueueTest, NonblockingAndGetsetattr) {
  Queue q("nb", O_RDWR | O_NONBLOCK, 2, 8);
  ASSERT_GE(q.q, 0);
  char buf[8];
  EXPECT_ERRNO(EAGAIN, mq_receive(q.q, buf, sizeof(buf), nullptr));
  ASSERT_EQ(mq_send(q.q, "a", 1, 0), 0);
  ASSERT_EQ(mq_send(q.q, "b", 1, 0), 0);
  EXPECT_ERRNO(EAGAIN, mq_send(q.q, "c", 1, 0));
  // mq_setattr changes O_NONBLOCK only (the file's flag), returns the old.
  mq_attr in{}, old{};
  in.mq_flags = 0;
  in.mq_maxmsg = 99;  // ignored
  ASSERT_EQ(mq_setattr(q.q, &in, &old), 0);
  EXPECT_EQ(old.mq_flags, O_NONBLOCK);
  EXPECT_EQ(old.mq_curmsgs, 2);
  EXPECT_EQ(fcntl(q.q, F_GETFL) & O_NONBLOCK, 0);
  mq_attr now{};
  ASSERT_EQ(mq_getattr(q.q, &now), 0);
  EXPECT_EQ(now.mq_maxmsg, 2);
  in.mq_flags = O_NONBLOCK | O_APPEND;
  EXPECT_ERRNO(EINVAL, mq_setattr(q.q, &in, nullptr));
  in.mq_flags = O_NONBLOCK;
  ASSERT_EQ(mq_setattr(q.q, &in, nullptr), 0);
  EXPECT_NE(fcntl(q.q, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_ERRNO(EAGAIN, mq_send(q.q, "c", 1, 0));
}

TEST(MqueueTest, AbsoluteRealtimeTimeouts) {
  Queue q("timeout", O_RDWR, 1, 8);
  ASSERT_GE(q.q, 0);
  char buf[8];
  int64_t start = NowMs();
  timespec dl = InMs(150);
  EXPECT_ERRNO(ETIMEDOUT, mq_timedreceive(q.q, buf, sizeof(buf), nullptr, &dl));
  EXPECT_GE(NowMs() - start, 140);
  // A deadline already past: at once.
  timespec past = InMs(-1000);
  start = NowMs();
  EXPECT_ERRNO(ETIMEDOUT, mq_timedreceive(q.q, buf, sizeof(buf), nullptr, &past));
  EXPECT_LT(NowMs() - start, 100);
  // An invalid timespec is EINVAL before anything else, even with a message
  // waiting (which stays).
  ASSERT_EQ(mq_send(q.q, "m", 1, 0), 0);
  timespec bad{0, 1000000000L};
  EXPECT_ERRNO(EINVAL, mq_timedreceive(q.q, buf, sizeof(buf), nullptr, &bad));
  EXPECT_ERRNO(EINVAL, mq_timedsend(q.q, "x", 1, 0, &bad));
  // Full: the sender times out.
  dl = InMs(100);
  EXPECT_ERRNO(ETIMEDOUT, mq_timedsend(q.q, "x", 1, 0, &dl));
  // A deadline does not matter when nothing has to wait.
  EXPECT_EQ(mq_timedreceive(q.q, buf, sizeof(buf), nullptr, &past), 1);
  EXPECT_EQ(mq_timedsend(q.q, "y", 1, 0, &past), 0);
}

TEST(MqueueTest, BlockedReceiverAndSenderWake) {
  Queue q("block", O_RDWR, 1, 8);
  ASSERT_GE(q.q, 0);
  std::atomic<int> got{-1};
  std::thread rx([&] {
    char buf[8];
    unsigned p = 0;
    ssize_t n = mq_receive(q.q, buf, sizeof(buf), &p);
    got = n == 1 && buf[0] == 'r' && p == 4 ? 1 : 0;
  });
  usleep(100000);
  EXPECT_EQ(got.load(), -1);
  ASSERT_EQ(mq_send(q.q, "r", 1, 4), 0);
  rx.join();
  EXPECT_EQ(got.load(), 1);
  // A sender blocked on a full queue goes on when a message is taken.
  ASSERT_EQ(mq_send(q.q, "1", 1, 0), 0);
  std::atomic<bool> sent{false};
  std::thread tx([&] {
    if (mq_send(q.q, "2", 1, 0) == 0) sent = true;
  });
  usleep(100000);
  EXPECT_FALSE(sent.load());
  char buf[8];
  ASSERT_EQ(mq_receive(q.q, buf, sizeof(buf), nullptr), 1);
  EXPECT_EQ(buf[0], '1');
  tx.join();
  EXPECT_TRUE(sent.load());
  ASSERT_EQ(mq_receive(q.q, buf, sizeof(buf), nullptr), 1);
  EXPECT_EQ(buf[0], '2');
}

void OnUsr1(int) {}

TEST(MqueueTest, SignalsInterruptOrRestart) {
  Queue q("sig", O_RDWR, 1, 8);
  ASSERT_GE(q.q, 0);
  for (bool restart : {false, true}) {
    SCOPED_TRACE(restart);
    struct sigaction sa {};
    sa.sa_handler = OnUsr1;
    sa.sa_flags = restart ? SA_RESTART : 0;
    ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
    std::atomic<int> result{-2}, err{0};
    std::atomic<pthread_t> tid{};
    std::thread rx([&] {
      tid = pthread_self();
      char buf[8];
      ssize_t n = mq_receive(q.q, buf, sizeof(buf), nullptr);
      err = errno;
      result = static_cast<int>(n);
    });
    usleep(100000);
    pthread_kill(rx.native_handle(), SIGUSR1);
    usleep(100000);
    if (restart) {
      EXPECT_EQ(result.load(), -2) << "SA_RESTART: still waiting";
      ASSERT_EQ(mq_send(q.q, "z", 1, 0), 0);
      rx.join();
      EXPECT_EQ(result.load(), 1);
    } else {
      rx.join();
      EXPECT_EQ(result.load(), -1);
      EXPECT_EQ(err.load(), EINTR);
    }
  }
  signal(SIGUSR1, SIG_DFL);
}

// ---- mq_notify ----

TEST(MqueueTest, NotifySignalOnEmptyToNonEmpty) {
  Queue q("notify", O_RDWR, 4, 8);
  ASSERT_GE(q.q, 0);
  sigset_t s, old;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &s, &old), 0);
  sigevent sev{};
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGUSR2;
  sev.sigev_value.sival_int = 4242;
  ASSERT_EQ(mq_notify(q.q, &sev), 0);
  EXPECT_EQ(StatusLine(q.q), Padded("QSIZE", 0, 10) + " " + Padded("NOTIFY", 0, 5) + " " +
                                 Padded("SIGNO", SIGUSR2, 5) + " " +
                                 Padded("NOTIFY_PID", getpid(), 6) + "\n");
  // Another process may not register while we are.
  EXPECT_EQ(RunInChild([&] {
              sigevent o{};
              o.sigev_notify = SIGEV_NONE;
              return mq_notify(q.q, &o) == -1 && errno == EBUSY ? 0 : 1;
            }),
            0);
  // Nor may we twice.
  EXPECT_ERRNO(EBUSY, mq_notify(q.q, &sev));
  ASSERT_EQ(mq_send(q.q, "a", 1, 0), 0);
  siginfo_t si{};
  timespec wait{2, 0};
  ASSERT_EQ(sigtimedwait(&s, &si, &wait), SIGUSR2);
  EXPECT_EQ(si.si_code, SI_MESGQ);
  EXPECT_EQ(si.si_pid, getpid());
  EXPECT_EQ(si.si_uid, getuid());
  EXPECT_EQ(si.si_value.sival_int, 4242);
  // Fired once: the registration is gone.
  EXPECT_NE(StatusLine(q.q).find("NOTIFY:0     SIGNO:0     NOTIFY_PID:0 "), std::string::npos);
  // Only an empty queue becoming non-empty fires.
  ASSERT_EQ(mq_notify(q.q, &sev), 0);
  ASSERT_EQ(mq_send(q.q, "b", 1, 0), 0);
  timespec zero{0, 0};
  EXPECT_ERRNO(EAGAIN, sigtimedwait(&s, &si, &zero));
  // mq_notify(NULL) unregisters; then any process may register.
  ASSERT_EQ(mq_notify(q.q, nullptr), 0);
  EXPECT_EQ(RunInChild([&] {
              sigevent o{};
              o.sigev_notify = SIGEV_NONE;
              return mq_notify(q.q, &o) == 0 ? 0 : 1;
            }),
            0);
  // The child's registration went with its exit (its close of the queue).
  ASSERT_EQ(mq_notify(q.q, &sev), 0);
  ASSERT_EQ(mq_notify(q.q, nullptr), 0);
  sev.sigev_notify = 99;
  EXPECT_ERRNO(EINVAL, mq_notify(q.q, &sev));
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = 65;
  EXPECT_ERRNO(EINVAL, mq_notify(q.q, &sev));
  EXPECT_ERRNO(EBADF, mq_notify(-1, nullptr));
  ASSERT_EQ(pthread_sigmask(SIG_SETMASK, &old, nullptr), 0);
}

TEST(MqueueTest, NotifyNoneAndCloseDropsRegistration) {
  Queue q("notifynone", O_RDWR, 4, 8);
  ASSERT_GE(q.q, 0);
  sigevent sev{};
  sev.sigev_notify = SIGEV_NONE;
  ASSERT_EQ(mq_notify(q.q, &sev), 0);
  EXPECT_NE(StatusLine(q.q).find("NOTIFY:1     SIGNO:0 "), std::string::npos) << StatusLine(q.q);
  ASSERT_EQ(mq_send(q.q, "a", 1, 0), 0);
  EXPECT_NE(StatusLine(q.q).find("NOTIFY:0 "), std::string::npos);
  // Closing any descriptor of the queue drops our registration
  // (mqueue_flush_file()).
  ASSERT_EQ(mq_notify(q.q, &sev), 0);
  mqd_t other = mq_open(q.name.c_str(), O_RDONLY);
  ASSERT_GE(other, 0);
  ASSERT_EQ(mq_close(other), 0);
  EXPECT_NE(StatusLine(q.q).find("NOTIFY:0 "), std::string::npos) << StatusLine(q.q);
}

std::atomic<int> g_thread_value{0};
void OnNotifyThread(sigval v) { g_thread_value = v.sival_int; }

TEST(MqueueTest, NotifyThreadThroughGlibcsNetlinkSocket) {
  Queue q("notifythread", O_RDWR, 4, 8);
  ASSERT_GE(q.q, 0);
  g_thread_value = 0;
  sigevent sev{};
  sev.sigev_notify = SIGEV_THREAD;
  sev.sigev_notify_function = OnNotifyThread;
  sev.sigev_value.sival_int = 777;
  ASSERT_EQ(mq_notify(q.q, &sev), 0);
  EXPECT_NE(StatusLine(q.q).find("NOTIFY:2     SIGNO:0 "), std::string::npos) << StatusLine(q.q);
  ASSERT_EQ(mq_send(q.q, "t", 1, 0), 0);
  for (int i = 0; i < 200 && g_thread_value.load() == 0; ++i) usleep(10000);
  EXPECT_EQ(g_thread_value.load(), 777);
  // Again, after a removal in between.
  char buf[8];
  ASSERT_EQ(mq_receive(q.q, buf, sizeof(buf), nullptr), 1);
  ASSERT_EQ(mq_notify(q.q, &sev), 0);
  ASSERT_EQ(mq_notify(q.q, nullptr), 0);
  g_thread_value = 0;
  sev.sigev_value.sival_int = 778;
  ASSERT_EQ(mq_notify(q.q, &sev), 0);
  ASSERT_EQ(mq_send(q.q, "u", 1, 0), 0);
  for (int i = 0; i < 200 && g_thread_value.load() == 0; ++i) usleep(10000);
  EXPECT_EQ(g_thread_value.load(), 778);
  // sigev_signo must name a netlink socket (the raw syscall).
  struct {
    uint64_t value;
    int32_t signo, notify;
    char rest[48];
  } raw{};
  char cookie[32] = {};
  raw.value = reinterpret_cast<uint64_t>(cookie);
  raw.notify = SIGEV_THREAD;
  raw.signo = -1;
  EXPECT_ERRNO(EBADF, syscall(SYS_mq_notify, q.q, &raw));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  raw.signo = p[0];
  EXPECT_ERRNO(ENOTSOCK, syscall(SYS_mq_notify, q.q, &raw));
  close(p[0]);
  close(p[1]);
}

// ---- the descriptor as a file ----

TEST(MqueueTest, ReadGivesTheStatusLine) {
  Queue q("read", O_RDWR, 4, 64);
  ASSERT_GE(q.q, 0);
  ASSERT_EQ(mq_send(q.q, "hello", 5, 3), 0);
  ASSERT_EQ(mq_send(q.q, "hi", 2, 7), 0);
  char buf[128] = {};
  ssize_t n = read(q.q, buf, sizeof(buf));
  ASSERT_EQ(n, 60);
  EXPECT_EQ(std::string(buf, 60),
            "QSIZE:7          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n");
  EXPECT_EQ(read(q.q, buf, sizeof(buf)), 0);  // at its end
  ASSERT_EQ(lseek(q.q, 6, SEEK_SET), 6);
  ASSERT_EQ(read(q.q, buf, 1), 1);
  EXPECT_EQ(buf[0], '7');
  EXPECT_ERRNO(EINVAL, write(q.q, "x", 1));
}

TEST(MqueueTest, PollSelectAndEpollReadiness) {
  Queue q("poll", O_RDWR, 2, 8);
  ASSERT_GE(q.q, 0);
  auto revents = [&] {
    pollfd p{q.q, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM, 0};
    return poll(&p, 1, 0) < 0 ? -1 : p.revents;
  };
  EXPECT_EQ(revents(), POLLOUT | POLLWRNORM);
  ASSERT_EQ(mq_send(q.q, "a", 1, 0), 0);
  EXPECT_EQ(revents(), POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);
  ASSERT_EQ(mq_send(q.q, "b", 1, 0), 0);
  EXPECT_EQ(revents(), POLLIN | POLLRDNORM);
  fd_set r, w;
  FD_ZERO(&r);
  FD_ZERO(&w);
  FD_SET(q.q, &r);
  FD_SET(q.q, &w);
  timeval tv{0, 0};
  ASSERT_EQ(select(q.q + 1, &r, &w, nullptr, &tv), 1);
  EXPECT_TRUE(FD_ISSET(q.q, &r));
  EXPECT_FALSE(FD_ISSET(q.q, &w));
  char buf[8];
  ASSERT_EQ(mq_receive(q.q, buf, sizeof(buf), nullptr), 1);
  ASSERT_EQ(mq_receive(q.q, buf, sizeof(buf), nullptr), 1);
  EXPECT_EQ(revents(), POLLOUT | POLLWRNORM);
  // epoll: a waiter wakes when another thread sends.
  int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = q.q;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, q.q, &e), 0);
  std::thread tx([&] {
    usleep(100000);
    mq_send(q.q, "e", 1, 0);
  });
  epoll_event out{};
  int64_t start = NowMs();
  EXPECT_EQ(epoll_wait(ep, &out, 1, 3000), 1);
  EXPECT_LT(NowMs() - start, 2500);
  EXPECT_EQ(out.events, static_cast<uint32_t>(EPOLLIN));
  tx.join();
  close(ep);
}

TEST(MqueueTest, CloseOnExecAlwaysAndInheritedByFork) {
  Queue q("exec", O_RDWR, 4, 8);  // no O_CLOEXEC asked
  ASSERT_GE(q.q, 0);
  // do_mq_open() installs every queue descriptor close-on-exec.
  EXPECT_EQ(fcntl(q.q, F_GETFD), FD_CLOEXEC);
  auto seen_after_exec = [&] {
    std::string cmd = "[ -e /proc/self/fd/" + std::to_string(q.q) + " ]";
    int st = RunInChild([&] {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      return 99;
    });
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  };
  EXPECT_EQ(seen_after_exec(), 1);
  ASSERT_EQ(fcntl(q.q, F_SETFD, 0), 0);
  EXPECT_EQ(seen_after_exec(), 0);
  // A forked child shares the open queue.
  int st = RunInChild([&] { return mq_send(q.q, "c", 1, 5) == 0 ? 0 : 1; });
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  char buf[8];
  unsigned p = 0;
  ASSERT_EQ(mq_receive(q.q, buf, sizeof(buf), &p), 1);
  EXPECT_EQ(buf[0], 'c');
  EXPECT_EQ(p, 5u);
}

// ---- limits ----

// mqueue_get_inode(): a queue charges maxmsg * msgsize plus the kernel's
// per-message bookkeeping (48 + 48 bytes each, here) to the real uid's
// RLIMIT_MSGQUEUE; EMFILE past it; the charge goes with the queue.
TEST(MqueueTest, RlimitMsgqueueCharges) {
  std::string a = Name("rl_a"), b = Name("rl_b");
  EXPECT_EQ(RunAsNobody([&] {
              const rlim_t one = 4 * 16 + 4 * 48 + 4 * 48;  // 448
              rlimit rl{one, one};
              if (setrlimit(RLIMIT_MSGQUEUE, &rl) != 0) return 1;
              mq_attr at{};
              at.mq_maxmsg = 4;
              at.mq_msgsize = 16;
              mqd_t qa = mq_open(a.c_str(), O_RDWR | O_CREAT, 0600, &at);
              if (qa < 0) return 2;
              if (mq_open(b.c_str(), O_RDWR | O_CREAT, 0600, &at) != -1 || errno != EMFILE) {
                return 3;
              }
              // Unlinked but open: still charged.
              mq_unlink(a.c_str());
              if (mq_open(b.c_str(), O_RDWR | O_CREAT, 0600, &at) != -1 || errno != EMFILE) {
                return 4;
              }
              mq_close(qa);
              mqd_t qb = mq_open(b.c_str(), O_RDWR | O_CREAT, 0600, &at);
              if (qb < 0) return 5;
              mq_close(qb);
              mq_unlink(b.c_str());
              return 0;
            }),
            0);
}

TEST(MqueueTest, QueuesMaxWithoutCapSysResource) {
  long queues_max = 0;
  FILE* f = fopen("/proc/sys/fs/mqueue/queues_max", "r");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(fscanf(f, "%ld", &queues_max), 1);
  fclose(f);
  ASSERT_GT(queues_max, 0);
  ASSERT_LE(queues_max, 4096);
  std::string prefix = Name("qmax");
  EXPECT_EQ(RunAsNobody([&] {
              mq_attr at{};
              at.mq_maxmsg = 1;
              at.mq_msgsize = 1;
              int made = 0, rc = 1;
              for (long i = 0; i <= queues_max; ++i) {
                std::string n = prefix + "_" + std::to_string(i);
                mqd_t q = mq_open(n.c_str(), O_RDWR | O_CREAT, 0600, &at);
                if (q < 0) {
                  rc = errno == ENOSPC ? 0 : 2;
                  break;
                }
                mq_close(q);
                ++made;
              }
              for (int i = 0; i < made; ++i) mq_unlink((prefix + "_" + std::to_string(i)).c_str());
              return made <= queues_max ? rc : 3;
            }),
            0);
}

TEST(MqueueTest, ProcSysFsMqueue) {
  auto read_long = [](const char* name) {
    std::string p = std::string("/proc/sys/fs/mqueue/") + name;
    FILE* f = fopen(p.c_str(), "r");
    long v = -1;
    if (f != nullptr) {
      if (fscanf(f, "%ld", &v) != 1) v = -1;
      fclose(f);
    }
    return v;
  };
  long msg_max = read_long("msg_max"), msgsize_max = read_long("msgsize_max");
  long msg_default = read_long("msg_default"), msgsize_default = read_long("msgsize_default");
  EXPECT_GE(msg_max, 1);
  EXPECT_GE(msgsize_max, 128);
  EXPECT_GE(msg_default, 1);
  EXPECT_GE(msgsize_default, 128);
  EXPECT_GT(read_long("queues_max"), 0);
  Queue q("procsys", O_RDWR);
  ASSERT_GE(q.q, 0);
  mq_attr a{};
  ASSERT_EQ(mq_getattr(q.q, &a), 0);
  EXPECT_EQ(a.mq_maxmsg, std::min(msg_default, msg_max));
  EXPECT_EQ(a.mq_msgsize, std::min(msgsize_default, msgsize_max));
}

// ---- the mqueue filesystem ----

// Runs `f(dir)` with an mqueue filesystem mounted at `dir`: /dev/mqueue if
// it is one (the sandbox's), else a fresh mount in a private mount
// namespace (natively). Returns f's result, or -1 if none could be had.
int WithMqueueMount(const std::function<int(const std::string&)>& f) {
  struct statfs s;
  if (statfs("/dev/mqueue", &s) == 0 && s.f_type == kMqueueMagic) return f("/dev/mqueue");
  int st = RunInChild([&] {
    if (unshare(CLONE_NEWNS) != 0) return 90;
    if (mount(nullptr, "/", nullptr, MS_PRIVATE | MS_REC, nullptr) != 0) return 91;
    std::string dir = "/tmp/sv_mqfs_" + std::to_string(getpid());
    mkdir(dir.c_str(), 0755);
    if (mount("mqueue", dir.c_str(), "mqueue", 0, nullptr) != 0) return 92;
    int r = f(dir);
    umount(dir.c_str());
    rmdir(dir.c_str());
    return r;
  });
  return WIFEXITED(st) ? WEXITSTATUS(st) : 200;
}

TEST(MqueueTest, MqueueFilesystemListsQueues) {
  Queue q("fs", O_RDWR, 4, 32, 0640);
  ASSERT_GE(q.q, 0);
  ASSERT_EQ(mq_send(q.q, "abc", 3, 1), 0);
  std::string base = q.name.substr(1);
  int r = WithMqueueMount([&](const std::string& dir) {
    struct statfs s;
    if (statfs(dir.c_str(), &s) != 0 || s.f_type != kMqueueMagic) return 1;
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || (st.st_mode & 07777) != 01777) return 2;
    std::string path = dir + "/" + base;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 0777) != 0640) {
      return 3;
    }
    int fd = open(path.c_str(), O_RDONLY);
    if (fd < 0) return 4;
    char buf[128] = {};
    ssize_t n = read(fd, buf, sizeof(buf));
    // An open(2) of the file is a queue descriptor too.
    char m[32];
    ssize_t got = mq_receive(fd, m, sizeof(m), nullptr);
    close(fd);
    if (n != 60 || strncmp(buf, "QSIZE:3 ", 8) != 0) return 5;
    if (got != 3) return 6;
    // Creating a file makes a queue with the default attributes; unlink
    // removes it.
    std::string made = dir + "/" + base + "_made";
    fd = open(made.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0) return 7;
    close(fd);
    mqd_t mq = mq_open(("/" + base + "_made").c_str(), O_RDWR);
    if (mq < 0) return 8;
    mq_attr a{};
    mq_getattr(mq, &a);
    mq_close(mq);
    if (a.mq_maxmsg < 1 || a.mq_msgsize < 1) return 9;
    if (unlink(made.c_str()) != 0) return 10;
    if (mq_open(("/" + base + "_made").c_str(), O_RDWR) != -1 || errno != ENOENT) return 11;
    if (mkdir((dir + "/sub").c_str(), 0755) != -1 || errno != EPERM) return 12;
    return 0;
  });
  if (r == 90 || r == 91 || r == 92) GTEST_SKIP() << "no mqueue mount could be made here: " << r;
  EXPECT_EQ(r, 0);
}

}  // namespace
}  // namespace syscall_test
