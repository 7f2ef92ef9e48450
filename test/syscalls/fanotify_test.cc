// fanotify(7): fanotify_init and fanotify_mark errnos, notification events
// (open, access, modify, close, open for exec) through inode, directory
// (FAN_EVENT_ON_CHILD, FAN_ONDIR), mount and filesystem marks, ignored
// masks, the event fd a listener gets, and a flood that overflows the
// queue (FAN_Q_OVERFLOW) as Linux's does at 16384 events.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// Run as a re-executed copy of this binary by the exec case: exits at once.
[[maybe_unused]] const bool kProbe = [] {
  if (getenv("FANOTIFY_TEST_EXIT")) _exit(0);
  return false;
}();

struct Event {
  uint64_t mask;
  int fd;
  int pid;
};

// Reads what is queued now (the group is FAN_NONBLOCK), closing event fds
// after `check` saw them.
std::vector<Event> Drain(int g, const std::function<void(const Event&)>& check = nullptr) {
  std::vector<Event> out;
  alignas(fanotify_event_metadata) char buf[64 * sizeof(fanotify_event_metadata)];
  for (;;) {
    ssize_t n = read(g, buf, sizeof(buf));
    if (n <= 0) break;
    for (auto* m = reinterpret_cast<fanotify_event_metadata*>(buf); FAN_EVENT_OK(m, n);
         m = FAN_EVENT_NEXT(m, n)) {
      Event e{m->mask, m->fd, m->pid};
      if (check) check(e);
      if (m->fd >= 0) close(m->fd);
      out.push_back(e);
    }
  }
  return out;
}

ino_t InoOf(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}
ino_t InoOf(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

// The union of the masks of this process's events on the object `ino`.
uint64_t MaskFor(int g, ino_t ino, pid_t pid = getpid()) {
  uint64_t mask = 0;
  Drain(g, [&](const Event& e) {
    if (e.fd >= 0 && e.pid == pid && InoOf(e.fd) == ino) mask |= e.mask;
  });
  return mask;
}

class FanotifyTest : public testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCap(CAP_SYS_ADMIN)) GTEST_SKIP() << "fanotify_init needs CAP_SYS_ADMIN";
    g_ = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY);
    ASSERT_GE(g_, 0) << ErrnoName(errno);
    file_ = dir_.Path("f");
    ASSERT_TRUE(WriteFile(file_, "0123456789"));
  }
  void TearDown() override {
    if (g_ >= 0) close(g_);
  }
  int g_ = -1;
  TempDir dir_;
  std::string file_;
};

TEST_F(FanotifyTest, InitErrnosAndFlags) {
  EXPECT_ERRNO(EINVAL, fanotify_init(0x80000000U, O_RDONLY));
  EXPECT_ERRNO(EINVAL, fanotify_init(FAN_CLASS_NOTIF, O_ACCMODE));
  EXPECT_ERRNO(EINVAL, fanotify_init(FAN_CLASS_NOTIF, O_RDONLY | O_DIRECTORY));
  EXPECT_ERRNO(EINVAL, fanotify_init(FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT, O_RDONLY));
  EXPECT_EQ(fcntl(g_, F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(g_, F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR | O_NONBLOCK);
  int plain = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
  ASSERT_GE(plain, 0);
  EXPECT_EQ(fcntl(plain, F_GETFD), 0);
  close(plain);
  char c;
  EXPECT_ERRNO(EAGAIN, read(g_, &c, 1));  // nothing queued
  // Without CAP_SYS_ADMIN a notification group without file handles is EPERM.
  EXPECT_EQ(RunAsNobody([] { return fanotify_init(FAN_CLASS_NOTIF, O_RDONLY) < 0 ? errno : 0; }),
            EPERM);
}

TEST_F(FanotifyTest, MarkErrnos) {
  const char* f = file_.c_str();
  EXPECT_ERRNO(EBADF, fanotify_mark(-1, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, f));
  int notfan = open(f, O_RDONLY);
  ASSERT_GE(notfan, 0);
  EXPECT_ERRNO(EINVAL, fanotify_mark(notfan, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, f));
  close(notfan);
  EXPECT_ERRNO(EINVAL, fanotify_mark(g_, FAN_MARK_ADD, 0, AT_FDCWD, f));
  EXPECT_ERRNO(EINVAL, fanotify_mark(g_, FAN_MARK_ADD | FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, f));
  EXPECT_ERRNO(EINVAL, fanotify_mark(g_, 0, FAN_OPEN, AT_FDCWD, f));
  EXPECT_ERRNO(EINVAL, fanotify_mark(g_, FAN_MARK_ADD | FAN_MARK_MOUNT | FAN_MARK_FILESYSTEM,
                                     FAN_OPEN, AT_FDCWD, f));
  EXPECT_ERRNO(EINVAL, fanotify_mark(g_, FAN_MARK_ADD | 0x80000000U, FAN_OPEN, AT_FDCWD, f));
  EXPECT_ERRNO(EINVAL, fanotify_mark(g_, FAN_MARK_ADD, 1ULL << 62, AT_FDCWD, f));
  EXPECT_ERRNO(ENOTDIR, fanotify_mark(g_, FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_OPEN, AT_FDCWD, f));
  EXPECT_ERRNO(ENOENT, fanotify_mark(g_, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, f));
  EXPECT_ERRNO(ENOENT, fanotify_mark(g_, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD,
                                     dir_.Path("missing").c_str()));
  EXPECT_OK(fanotify_mark(g_, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, f));
  EXPECT_OK(fanotify_mark(g_, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, f));
  EXPECT_ERRNO(ENOENT, fanotify_mark(g_, FAN_MARK_REMOVE, FAN_OPEN, AT_FDCWD, f));
}

// Open, write, read and close of a marked file: the events, this process's
// pid, and an fd of the file itself, whose own I/O makes no events.
TEST_F(FanotifyTest, InodeMarkEventsAndEventFd) {
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_ADD, FAN_OPEN | FAN_ACCESS | FAN_MODIFY | FAN_CLOSE,
                          AT_FDCWD, file_.c_str()), 0);
  int fd = open(file_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "ab", 2), 2);
  char buf[4];
  ASSERT_EQ(pread(fd, buf, 2, 0), 2);
  close(fd);
  uint64_t got = 0;
  int with_fd = 0;
  Drain(g_, [&](const Event& e) {
    EXPECT_EQ(e.pid, getpid());
    ASSERT_GE(e.fd, 0);
    EXPECT_EQ(InoOf(e.fd), InoOf(file_));
    EXPECT_EQ(fcntl(e.fd, F_GETFL) & O_ACCMODE, O_RDONLY);
    char c;
    EXPECT_EQ(pread(e.fd, &c, 1, 0), 1);  // the listener's read: no event
    got |= e.mask;
    ++with_fd;
  });
  EXPECT_GE(with_fd, 1);
  EXPECT_EQ(got, FAN_OPEN | FAN_MODIFY | FAN_ACCESS | FAN_CLOSE_WRITE);
  EXPECT_TRUE(Drain(g_).empty()) << "the event fds' own reads and closes made events";
  // Opened read-only and closed: CLOSE_NOWRITE.
  fd = open(file_.c_str(), O_RDONLY);
  close(fd);
  EXPECT_EQ(MaskFor(g_, InoOf(file_)), FAN_OPEN | FAN_CLOSE_NOWRITE);
}

TEST_F(FanotifyTest, DirectoryMarkChildrenAndOnDir) {
  const std::string d = dir_.path();
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_ADD, FAN_OPEN | FAN_EVENT_ON_CHILD, AT_FDCWD, d.c_str()), 0);
  close(open(file_.c_str(), O_RDONLY));
  EXPECT_EQ(MaskFor(g_, InoOf(file_)), FAN_OPEN);
  close(open(d.c_str(), O_RDONLY | O_DIRECTORY));  // the directory itself: no FAN_ONDIR asked
  EXPECT_EQ(MaskFor(g_, InoOf(d)), 0u);
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_ADD, FAN_ONDIR, AT_FDCWD, d.c_str()), 0);
  close(open(d.c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_EQ(MaskFor(g_, InoOf(d)), FAN_OPEN);  // FAN_ONDIR is not reported without FIDs
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_REMOVE, FAN_EVENT_ON_CHILD, AT_FDCWD, d.c_str()), 0);
  close(open(file_.c_str(), O_RDONLY));
  EXPECT_EQ(MaskFor(g_, InoOf(file_)), 0u);
  // FLUSH ends every inode mark.
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_FLUSH, 0, AT_FDCWD, d.c_str()), 0);
  close(open(d.c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_EQ(MaskFor(g_, InoOf(d)), 0u);
}

TEST_F(FanotifyTest, MountAndFilesystemMarks) {
  for (unsigned type : {FAN_MARK_MOUNT, FAN_MARK_FILESYSTEM}) {
    SCOPED_TRACE(type == FAN_MARK_MOUNT ? "mount" : "filesystem");
    int rc = fanotify_mark(g_, FAN_MARK_ADD | type, FAN_OPEN, AT_FDCWD, dir_.path().c_str());
    ASSERT_EQ(rc, 0) << ErrnoName(errno);
    close(open(file_.c_str(), O_RDONLY));
    EXPECT_EQ(MaskFor(g_, InoOf(file_)), FAN_OPEN);
    ASSERT_EQ(fanotify_mark(g_, FAN_MARK_FLUSH | type, 0, AT_FDCWD, dir_.path().c_str()), 0);
    Drain(g_);
    close(open(file_.c_str(), O_RDONLY));
    EXPECT_EQ(MaskFor(g_, InoOf(file_)), 0u);
  }
}

TEST_F(FanotifyTest, IgnoredMask) {
  const char* f = file_.c_str();
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_ADD, FAN_OPEN | FAN_CLOSE_NOWRITE, AT_FDCWD, f), 0);
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, FAN_CLOSE_NOWRITE, AT_FDCWD, f),
            0);
  close(open(f, O_RDONLY));
  EXPECT_EQ(MaskFor(g_, InoOf(file_)), FAN_OPEN);
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_REMOVE | FAN_MARK_IGNORED_MASK, FAN_CLOSE_NOWRITE,
                          AT_FDCWD, f), 0);
  close(open(f, O_RDONLY));
  EXPECT_EQ(MaskFor(g_, InoOf(file_)), FAN_OPEN | FAN_CLOSE_NOWRITE);
}

// An execve's open is FAN_OPEN and FAN_OPEN_EXEC in one event, by the
// task that execs.
TEST_F(FanotifyTest, OpenExec) {
  const std::string self = SelfExe();
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_ADD, FAN_OPEN | FAN_OPEN_EXEC, AT_FDCWD, self.c_str()), 0);
  pid_t pid = fork();
  if (pid == 0) {
    setenv("FANOTIFY_TEST_EXIT", "1", 1);
    execl(self.c_str(), self.c_str(), nullptr);
    _exit(99);
  }
  int st;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_EXIT_CODE(st, 0);
  EXPECT_EQ(MaskFor(g_, InoOf(self), pid), FAN_OPEN | FAN_OPEN_EXEC);
}

// A flood of distinct events: 16384 queue, then one FAN_Q_OVERFLOW with no
// fd, and nothing after it.
TEST_F(FanotifyTest, FloodOverflowsAtLinuxLimit) {
  constexpr int kFiles = 16384 + 50;
  const std::string d = dir_.Path("flood");
  ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
  ASSERT_EQ(fanotify_mark(g_, FAN_MARK_ADD, FAN_OPEN | FAN_EVENT_ON_CHILD, AT_FDCWD, d.c_str()), 0);
  for (int i = 0; i < kFiles; ++i) {
    int fd = open((d + "/" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0) << i;
    close(fd);
  }
  size_t events = 0, overflows = 0;
  bool after_overflow = false;
  Drain(g_, [&](const Event& e) {
    if (e.mask == FAN_Q_OVERFLOW) {
      EXPECT_EQ(e.fd, FAN_NOFD);
      ++overflows;
      return;
    }
    if (overflows) after_overflow = true;
    ++events;
  });
  EXPECT_EQ(events, 16384u);
  EXPECT_EQ(overflows, 1u);
  EXPECT_FALSE(after_overflow);
}

}  // namespace
}  // namespace syscall_test
