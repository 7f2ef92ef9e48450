// System V message queues: msgget/msgsnd/msgrcv/msgctl as Linux behaves
// (ipc/msg.c): type selection (0, >0, <0, MSG_EXCEPT), MSG_NOERROR and
// E2BIG, IPC_NOWAIT (EAGAIN, ENOMSG), blocking both ways, queue limits,
// IPC_RMID waking waiters with EIDRM, EINTR, IPC_STAT/IPC_SET/IPC_INFO.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// How Queue::Recv reports a failure.
std::string Err(int e) { return "errno " + std::to_string(e); }

struct Msg {
  long type;
  char text[64];
};

class Queue {
 public:
  explicit Queue(int mode = 0600) : id_(msgget(IPC_PRIVATE, IPC_CREAT | mode)) {}
  ~Queue() {
    if (id_ >= 0) msgctl(id_, IPC_RMID, nullptr);
  }
  int id() const { return id_; }
  int Send(long type, const char *text, int flags = 0) const {
    Msg m = {type, {}};
    strncpy(m.text, text, sizeof(m.text) - 1);
    return msgsnd(id_, &m, strlen(text), flags);
  }
  // "type:text", or "errno NAME".
  std::string Recv(long type, int flags = IPC_NOWAIT, size_t size = 63) const {
    Msg m = {};
    ssize_t n = msgrcv(id_, &m, size, type, flags);
    if (n < 0) return Err(errno);
    return std::to_string(m.type) + ":" + std::string(m.text, static_cast<size_t>(n));
  }

 private:
  int id_;
};

TEST(SysvMsg, GetByKey) {
  key_t key = 0x5e790000 + getpid() % 0xffff;
  int id = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
  ASSERT_GE(id, 0);
  EXPECT_EQ(msgget(key, 0), id);
  EXPECT_ERRNO(EEXIST, msgget(key, IPC_CREAT | IPC_EXCL | 0600));
  ASSERT_EQ(msgctl(id, IPC_RMID, nullptr), 0);
  EXPECT_ERRNO(ENOENT, msgget(key, 0));
}

TEST(SysvMsg, TypeSelection) {
  Queue q;
  ASSERT_EQ(q.Send(3, "c"), 0);
  ASSERT_EQ(q.Send(1, "a"), 0);
  ASSERT_EQ(q.Send(2, "b"), 0);
  ASSERT_EQ(q.Send(5, "e"), 0);
  EXPECT_EQ(q.Recv(2), "2:b");                           // first of type 2
  EXPECT_EQ(q.Recv(3, IPC_NOWAIT | MSG_EXCEPT), "1:a");  // first not of type 3
  EXPECT_EQ(q.Recv(-4), "3:c");                          // lowest type <= 4
  EXPECT_EQ(q.Recv(-4), Err(ENOMSG));
  EXPECT_EQ(q.Recv(0), "5:e");  // first of any type
  EXPECT_EQ(q.Recv(0), Err(ENOMSG));
}

TEST(SysvMsg, SizesAndTruncation) {
  Queue q;
  ASSERT_EQ(q.Send(1, "0123456789"), 0);
  EXPECT_EQ(q.Recv(0, IPC_NOWAIT, 4), Err(E2BIG));
  EXPECT_EQ(q.Recv(0, IPC_NOWAIT | MSG_NOERROR, 4), "1:0123");
  EXPECT_EQ(q.Recv(0), Err(ENOMSG));  // the truncated rest is gone
  Msg m = {0, {}};
  EXPECT_ERRNO(EINVAL, msgsnd(q.id(), &m, 1, 0));  // mtype < 1
  m.type = 1;
  EXPECT_ERRNO(EINVAL, msgsnd(q.id(), &m, 8193, 0));  // > msgmax
  EXPECT_ERRNO(EINVAL, msgsnd(q.id(), &m, static_cast<size_t>(-1), 0));
  EXPECT_ERRNO(EINVAL, msgrcv(q.id(), &m, static_cast<size_t>(-1), 0, 0));
  EXPECT_ERRNO(EFAULT, msgsnd(q.id(), nullptr, 1, 0));
  EXPECT_ERRNO(EINVAL, msgsnd(-1, &m, 1, 0));
  ASSERT_EQ(msgsnd(q.id(), &m, 0, 0), 0);  // an empty message is fine
  EXPECT_EQ(q.Recv(0), "1:");
}

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

// MSG_COPY (CONFIG_CHECKPOINT_RESTORE, which Debian's kernels have): a copy
// of the message at an index, left in the queue; only with IPC_NOWAIT and
// never with MSG_EXCEPT (do_msgrcv()).
TEST(SysvMsg, CopyLeavesTheMessageAtAnIndex) {
  Queue q;
  ASSERT_EQ(q.Send(7, "first"), 0);
  ASSERT_EQ(q.Send(3, "second"), 0);
  struct msqid_ds before;
  ASSERT_EQ(msgctl(q.id(), IPC_STAT, &before), 0);
  EXPECT_EQ(q.Recv(1, IPC_NOWAIT | MSG_COPY), "3:second");
  EXPECT_EQ(q.Recv(0, IPC_NOWAIT | MSG_COPY), "7:first");
  // copy_msg() into a buffer of the size asked: too small is EINVAL even
  // with MSG_NOERROR.
  EXPECT_EQ(q.Recv(0, IPC_NOWAIT | MSG_COPY | MSG_NOERROR, 2), Err(EINVAL));
  EXPECT_EQ(q.Recv(0, IPC_NOWAIT | MSG_COPY, 2), Err(E2BIG));
  EXPECT_EQ(q.Recv(2, IPC_NOWAIT | MSG_COPY), Err(ENOMSG));
  EXPECT_EQ(q.Recv(-1, IPC_NOWAIT | MSG_COPY), Err(ENOMSG));
  EXPECT_EQ(q.Recv(0, MSG_COPY), Err(EINVAL));
  EXPECT_EQ(q.Recv(0, IPC_NOWAIT | MSG_COPY | MSG_EXCEPT), Err(EINVAL));
  struct msqid_ds after;
  ASSERT_EQ(msgctl(q.id(), IPC_STAT, &after), 0);
  EXPECT_EQ(after.msg_qnum, 2u);
  EXPECT_EQ(after.msg_lrpid, before.msg_lrpid);
  EXPECT_EQ(q.Recv(0), "7:first");  // both still there, in order
  EXPECT_EQ(q.Recv(0), "3:second");
}

TEST(SysvMsg, FullQueueBlocksOrFails) {
  Queue q;
  static char big[8192];
  struct {
    long type;
    char text[8192];
  } m;
  m.type = 1;
  memcpy(m.text, big, sizeof(big));
  ASSERT_EQ(msgsnd(q.id(), &m, 8192, 0), 0);
  ASSERT_EQ(msgsnd(q.id(), &m, 8192, 0), 0);  // 16384 = msgmnb
  EXPECT_ERRNO(EAGAIN, msgsnd(q.id(), &m, 1, IPC_NOWAIT));
  struct msqid_ds ds = {};
  ASSERT_EQ(msgctl(q.id(), IPC_STAT, &ds), 0);
  EXPECT_EQ(ds.msg_qnum, 2u);
  EXPECT_EQ(ds.__msg_cbytes, 16384u);
  EXPECT_EQ(ds.msg_qbytes, 16384u);
  EXPECT_EQ(ds.msg_lspid, getpid());
  pid_t pid = fork();
  if (pid == 0) _exit(msgsnd(q.id(), &m, 100, 0) == 0 ? 0 : 1);  // blocks
  usleep(50000);
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);
  ASSERT_EQ(msgrcv(q.id(), &m, 8192, 0, 0), 8192);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
  ASSERT_EQ(msgctl(q.id(), IPC_STAT, &ds), 0);
  EXPECT_EQ(ds.msg_qnum, 2u);
  EXPECT_EQ(ds.msg_lrpid, getpid());
}

TEST(SysvMsg, ReceiverBlocksUntilAMessageOfItsType) {
  Queue q;
  pid_t pid = fork();
  if (pid == 0) {
    Msg m;
    ssize_t n = msgrcv(q.id(), &m, sizeof(m.text), 7, 0);
    _exit(n == 2 && m.type == 7 ? 0 : 1);
  }
  usleep(30000);
  ASSERT_EQ(q.Send(6, "no"), 0);
  usleep(30000);
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);
  ASSERT_EQ(q.Send(7, "ok"), 0);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(q.Recv(0), "6:no");
}

TEST(SysvMsg, RemoveWakesWaitersWithEidrm) {
  int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  ASSERT_GE(id, 0);
  pid_t pid = fork();
  if (pid == 0) {
    Msg m;
    ssize_t n = msgrcv(id, &m, sizeof(m.text), 0, 0);
    _exit(n == -1 && errno == EIDRM ? 0 : 1);
  }
  usleep(50000);
  ASSERT_EQ(msgctl(id, IPC_RMID, nullptr), 0);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
}

void OnAlarm(int) {}

TEST(SysvMsg, SignalHandlerInterruptsWithEintr) {
  Queue q;
  struct sigaction sa = {}, old;
  sa.sa_handler = OnAlarm;
  sa.sa_flags = SA_RESTART;  // msgrcv is never restarted after a handler
  ASSERT_EQ(sigaction(SIGALRM, &sa, &old), 0);
  ualarm(50000, 0);
  EXPECT_EQ(q.Recv(0, 0), Err(EINTR));
  sigaction(SIGALRM, &old, nullptr);
}

TEST(SysvMsg, SetAndInfo) {
  Queue q;
  struct msqid_ds ds = {};
  ASSERT_EQ(msgctl(q.id(), IPC_STAT, &ds), 0);
  ds.msg_qbytes = 100;
  ds.msg_perm.mode = 0640;
  ASSERT_EQ(msgctl(q.id(), IPC_SET, &ds), 0);
  ASSERT_EQ(msgctl(q.id(), IPC_STAT, &ds), 0);
  EXPECT_EQ(ds.msg_qbytes, 100u);
  EXPECT_EQ(ds.msg_perm.mode & 0777, 0640);
  static char big[101];
  struct {
    long type;
    char text[101];
  } m;
  m.type = 1;
  memcpy(m.text, big, sizeof(big));
  EXPECT_ERRNO(EAGAIN, msgsnd(q.id(), &m, 101, IPC_NOWAIT));
  struct msginfo info = {};
  int max = msgctl(0, IPC_INFO, reinterpret_cast<struct msqid_ds *>(&info));
  ASSERT_GE(max, 0);
  EXPECT_EQ(info.msgmax, 8192);
  EXPECT_EQ(info.msgmnb, 16384);
  bool found = false;
  for (int i = 0; i <= max; ++i) {
    if (msgctl(i, MSG_STAT_ANY, &ds) == q.id()) found = true;
  }
  EXPECT_TRUE(found);
  EXPECT_ERRNO(EINVAL, msgctl(q.id(), 12345, &ds));
  EXPECT_EQ(ReadFile("/proc/sys/kernel/msgmax"), "8192\n");
  EXPECT_EQ(ReadFile("/proc/sys/kernel/msgmnb"), "16384\n");
  EXPECT_EQ(ReadFile("/proc/sys/kernel/msgmni"), "32000\n");
  std::string text = ReadFile("/proc/sysvipc/msg");
  EXPECT_EQ(text.rfind("       key      msqid perms      cbytes       qnum", 0), 0u) << text;
  EXPECT_NE(text.find(" " + std::to_string(q.id()) + "   640 "), std::string::npos) << text;
}

TEST(SysvMsg, Permissions) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to change uid";
  Queue q(0602);
  int status = RunInChild([&] {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 10;
    if (q.Send(1, "x") != 0) return 1;       // others may write
    if (q.Recv(0) != Err(EACCES)) return 2;  // not read
    if (msgctl(q.id(), IPC_RMID, nullptr) != -1 || errno != EPERM) return 3;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(q.Recv(0), "1:x");
}

}  // namespace
}  // namespace syscall_test
