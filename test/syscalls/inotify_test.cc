// inotify(7): events for what this process does to watched files and
// directories, read as struct inotify_event records.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

struct Event {
  int wd;
  uint32_t mask;
  uint32_t cookie;
  std::string name;
};

// Every queued event (the fd is non-blocking).
std::vector<Event> Drain(int fd) {
  std::vector<Event> out;
  alignas(inotify_event) char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
      EXPECT_EQ(errno, EAGAIN);
      return out;
    }
    for (ssize_t off = 0; off < n;) {
      auto* e = reinterpret_cast<inotify_event*>(buf + off);
      EXPECT_EQ(e->len % sizeof(inotify_event), 0u) << "names are padded to 16 bytes";
      out.push_back({e->wd, e->mask, e->cookie, e->len ? std::string(e->name) : ""});
      off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
}

std::string Show(const std::vector<Event>& v) {
  std::string s;
  for (const Event& e : v) {
    s += std::to_string(e.wd) + ":" + std::to_string(e.mask) + ":" + e.name + " ";
  }
  return s;
}

void WriteFile(const std::string& p, const std::string& data) {
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fd);
}

class Inotify : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    ASSERT_GE(fd_, 0) << strerror(errno);
  }
  void TearDown() override { close(fd_); }
  int fd_ = -1;
  TempDir dir_;
};

TEST_F(Inotify, InitFlags) {
  EXPECT_EQ(fcntl(fd_, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ(fcntl(fd_, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  char buf[64];
  EXPECT_ERRNO(EAGAIN, read(fd_, buf, sizeof(buf)));
  EXPECT_ERRNO(EINVAL, inotify_init1(0x4));
  int fd = inotify_init();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  close(fd);
}

TEST_F(Inotify, AddWatchErrors) {
  std::string f = dir_.Path("f");
  WriteFile(f, "x");
  EXPECT_ERRNO(EINVAL, inotify_add_watch(fd_, f.c_str(), 0));
  EXPECT_ERRNO(ENOENT, inotify_add_watch(fd_, dir_.Path("missing").c_str(), IN_ALL_EVENTS));
  EXPECT_ERRNO(ENOTDIR, inotify_add_watch(fd_, f.c_str(), IN_MODIFY | IN_ONLYDIR));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_ERRNO(EINVAL, inotify_add_watch(p[0], f.c_str(), IN_MODIFY));
  close(p[0]);
  close(p[1]);
  EXPECT_ERRNO(EBADF, inotify_add_watch(-1, f.c_str(), IN_MODIFY));
  EXPECT_ERRNO(EINVAL, inotify_rm_watch(fd_, 12345));
}

TEST_F(Inotify, SameObjectSameWatch) {
  std::string f = dir_.Path("f");
  WriteFile(f, "x");
  int wd = inotify_add_watch(fd_, f.c_str(), IN_MODIFY);
  ASSERT_GT(wd, 0);
  EXPECT_EQ(inotify_add_watch(fd_, f.c_str(), IN_ATTRIB | IN_MASK_ADD), wd);
  chmod(f.c_str(), 0600);
  WriteFile(f, "y");
  auto ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 2u) << Show(ev);  // IN_MASK_ADD kept IN_MODIFY
  EXPECT_EQ(ev[0].mask, IN_ATTRIB);
  EXPECT_EQ(ev[1].mask, IN_MODIFY);
  // Without IN_MASK_ADD the mask is replaced.
  EXPECT_EQ(inotify_add_watch(fd_, f.c_str(), IN_ATTRIB), wd);
  WriteFile(f, "z");
  EXPECT_TRUE(Drain(fd_).empty());
}

TEST_F(Inotify, FileLifecycleInWatchedDirectory) {
  int wd = inotify_add_watch(fd_, dir_.path().c_str(), IN_ALL_EVENTS);
  ASSERT_GT(wd, 0) << strerror(errno);
  std::string f = dir_.Path("file.txt");
  WriteFile(f, "hello");
  int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char buf[16];
  ASSERT_EQ(read(fd, buf, sizeof(buf)), 5);
  close(fd);
  ASSERT_EQ(unlink(f.c_str()), 0);
  auto ev = Drain(fd_);
  std::vector<uint32_t> want = {IN_CREATE, IN_OPEN, IN_MODIFY, IN_CLOSE_WRITE, IN_OPEN,
                                IN_ACCESS, IN_CLOSE_NOWRITE, IN_DELETE};
  ASSERT_EQ(ev.size(), want.size()) << Show(ev);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(ev[i].wd, wd);
    EXPECT_EQ(ev[i].mask, want[i]) << i << ": " << Show(ev);
    EXPECT_EQ(ev[i].name, "file.txt");
    EXPECT_EQ(ev[i].cookie, 0u);
  }
}

TEST_F(Inotify, DirectoriesCarryIsDir) {
  int wd = inotify_add_watch(fd_, dir_.path().c_str(), IN_CREATE | IN_DELETE);
  ASSERT_GT(wd, 0);
  ASSERT_EQ(mkdir(dir_.Path("sub").c_str(), 0755), 0);
  ASSERT_EQ(rmdir(dir_.Path("sub").c_str()), 0);
  auto ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 2u) << Show(ev);
  EXPECT_EQ(ev[0].mask, IN_CREATE | IN_ISDIR);
  EXPECT_EQ(ev[1].mask, IN_DELETE | IN_ISDIR);
  EXPECT_EQ(ev[1].name, "sub");
}

TEST_F(Inotify, RenameSharesACookie) {
  std::string a = dir_.Path("a"), b = dir_.Path("b");
  WriteFile(a, "x");
  int dwd = inotify_add_watch(fd_, dir_.path().c_str(), IN_MOVE);
  int fwd = inotify_add_watch(fd_, a.c_str(), IN_MOVE_SELF);
  ASSERT_GT(dwd, 0);
  ASSERT_GT(fwd, 0);
  ASSERT_EQ(rename(a.c_str(), b.c_str()), 0);
  auto ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 3u) << Show(ev);
  EXPECT_EQ(ev[0].mask, IN_MOVED_FROM);
  EXPECT_EQ(ev[0].name, "a");
  EXPECT_EQ(ev[1].mask, IN_MOVED_TO);
  EXPECT_EQ(ev[1].name, "b");
  EXPECT_NE(ev[0].cookie, 0u);
  EXPECT_EQ(ev[0].cookie, ev[1].cookie);
  EXPECT_EQ(ev[2].wd, fwd);
  EXPECT_EQ(ev[2].mask, IN_MOVE_SELF);
}

// A moved directory's own IN_MOVE_SELF has no IN_ISDIR (LTP inotify02);
// its parent's IN_MOVED_FROM/TO have.
TEST_F(Inotify, DirectoryMoveSelfHasNoIsdir) {
  std::string a = dir_.Path("a"), b = dir_.Path("b");
  ASSERT_EQ(mkdir(a.c_str(), 0700), 0);
  int dwd = inotify_add_watch(fd_, dir_.path().c_str(), IN_MOVE);
  int swd = inotify_add_watch(fd_, a.c_str(), IN_MOVE_SELF);
  ASSERT_GT(dwd, 0);
  ASSERT_GT(swd, 0);
  ASSERT_EQ(rename(a.c_str(), b.c_str()), 0);
  auto ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 3u) << Show(ev);
  EXPECT_EQ(ev[0].mask, IN_MOVED_FROM | IN_ISDIR);
  EXPECT_EQ(ev[1].mask, IN_MOVED_TO | IN_ISDIR);
  EXPECT_EQ(ev[2].wd, swd);
  EXPECT_EQ(ev[2].mask, IN_MOVE_SELF);
}

// A watch is on the object, not on its name: a directory renamed twice
// reports IN_MOVE_SELF both times, and what happens in it reaches the
// watch whether it is reached through the new name or through the cwd
// that was inside it all along (LTP inotify02 renames its cwd twice).
TEST_F(Inotify, WatchFollowsARenamedDirectory) {
  std::string a = dir_.Path("a"), b = dir_.Path("b"), c = dir_.Path("c");
  ASSERT_EQ(mkdir(a.c_str(), 0700), 0);
  int wd = inotify_add_watch(fd_, a.c_str(), IN_ALL_EVENTS & ~(IN_OPEN | IN_CLOSE | IN_ACCESS));
  ASSERT_GT(wd, 0) << strerror(errno);
  int saved_cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(saved_cwd, 0);
  ASSERT_EQ(chdir(a.c_str()), 0);

  ASSERT_EQ(rename(a.c_str(), b.c_str()), 0);
  WriteFile("f", "x");  // through the cwd
  ASSERT_EQ(rename(b.c_str(), c.c_str()), 0);
  ASSERT_EQ(chmod(c.c_str(), 0755), 0);  // through the new name
  ASSERT_EQ(unlink("f"), 0);             // through the cwd again
  WriteFile(c + "/g", "y");              // through the new name

  // The same object under its newest name is the same watch.
  EXPECT_EQ(inotify_add_watch(fd_, c.c_str(), IN_ALL_EVENTS | IN_MASK_ADD), wd);
  ASSERT_EQ(fchdir(saved_cwd), 0);
  close(saved_cwd);

  auto ev = Drain(fd_);
  struct Want {
    uint32_t mask;
    const char* name;
  };
  std::vector<Want> want = {{IN_MOVE_SELF, ""}, {IN_CREATE, "f"},           {IN_MODIFY, "f"},
                            {IN_MOVE_SELF, ""}, {IN_ATTRIB | IN_ISDIR, ""}, {IN_DELETE, "f"},
                            {IN_CREATE, "g"},   {IN_MODIFY, "g"}};
  ASSERT_EQ(ev.size(), want.size()) << Show(ev);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(ev[i].wd, wd) << i << ": " << Show(ev);
    EXPECT_EQ(ev[i].mask, want[i].mask) << i << ": " << Show(ev);
    EXPECT_EQ(ev[i].name, want[i].name) << i << ": " << Show(ev);
  }
}

// /proc/self/fdinfo shows each watch: its wd, the object's inode number
// and device, and the mask with IN_ONESHOT (LTP inotify12).
TEST_F(Inotify, FdinfoShowsEachWatch) {
  std::string f = dir_.Path("f");
  WriteFile(f, "x");
  int wd = inotify_add_watch(fd_, f.c_str(), IN_MODIFY | IN_ONESHOT);
  ASSERT_GT(wd, 0);
  struct stat st;
  ASSERT_EQ(stat(f.c_str(), &st), 0);
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd_));
  std::string line;
  bool found = false;
  while (std::getline(in, line)) {
    unsigned w = 0, sdev = 0, mask = 0;
    unsigned long long ino = 0;
    if (sscanf(line.c_str(), "inotify wd:%x ino:%llx sdev:%x mask:%x", &w, &ino, &sdev, &mask) !=
        4) {
      continue;
    }
    found = true;
    EXPECT_EQ(w, static_cast<unsigned>(wd));
    EXPECT_EQ(ino, static_cast<unsigned long long>(st.st_ino));
    EXPECT_EQ(sdev, (major(st.st_dev) << 20) | minor(st.st_dev));
    EXPECT_EQ(mask, static_cast<unsigned>(IN_MODIFY | IN_ONESHOT));
  }
  EXPECT_TRUE(found);
}

TEST_F(Inotify, SelfEventsEndWithIgnored) {
  std::string f = dir_.Path("f");
  WriteFile(f, "x");
  int wd = inotify_add_watch(fd_, f.c_str(), IN_ALL_EVENTS);
  ASSERT_GT(wd, 0);
  ASSERT_EQ(chmod(f.c_str(), 0600), 0);
  ASSERT_EQ(truncate(f.c_str(), 0), 0);
  ASSERT_EQ(unlink(f.c_str()), 0);
  auto ev = Drain(fd_);
  std::vector<uint32_t> want = {IN_ATTRIB, IN_MODIFY, IN_ATTRIB, IN_DELETE_SELF, IN_IGNORED};
  ASSERT_EQ(ev.size(), want.size()) << Show(ev);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(ev[i].mask, want[i]) << Show(ev);
  EXPECT_ERRNO(EINVAL, inotify_rm_watch(fd_, wd));
}

// A watched file in a watched directory: its own watch ends (DELETE_SELF,
// IGNORED) before the directory hears of the name's removal; for rmdir
// the same. Events on the file reach the directory's watch first.
TEST_F(Inotify, OrderOfParentAndSelfEvents) {
  std::string f = dir_.Path("f");
  WriteFile(f, "x");
  ASSERT_EQ(mkdir(dir_.Path("sub").c_str(), 0755), 0);
  int dwd = inotify_add_watch(fd_, dir_.path().c_str(), IN_ALL_EVENTS);
  int fwd = inotify_add_watch(fd_, f.c_str(), IN_ALL_EVENTS);
  int swd = inotify_add_watch(fd_, dir_.Path("sub").c_str(), IN_DELETE_SELF);
  ASSERT_GT(dwd, 0);
  ASSERT_GT(fwd, 0);
  ASSERT_GT(swd, 0);
  ASSERT_EQ(chmod(f.c_str(), 0600), 0);
  auto ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 2u) << Show(ev);
  EXPECT_EQ(ev[0].wd, dwd) << Show(ev);
  EXPECT_EQ(ev[0].name, "f");
  EXPECT_EQ(ev[1].wd, fwd) << Show(ev);

  ASSERT_EQ(unlink(f.c_str()), 0);
  ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 4u) << Show(ev);
  EXPECT_EQ(ev[0].wd, fwd);
  EXPECT_EQ(ev[0].mask, IN_ATTRIB);
  EXPECT_EQ(ev[1].wd, fwd);
  EXPECT_EQ(ev[1].mask, IN_DELETE_SELF);
  EXPECT_EQ(ev[2].wd, fwd);
  EXPECT_EQ(ev[2].mask, IN_IGNORED);
  EXPECT_EQ(ev[3].wd, dwd);
  EXPECT_EQ(ev[3].mask, IN_DELETE);
  EXPECT_EQ(ev[3].name, "f");

  ASSERT_EQ(rmdir(dir_.Path("sub").c_str()), 0);
  ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 3u) << Show(ev);
  EXPECT_EQ(ev[0].wd, swd);
  EXPECT_EQ(ev[0].mask, IN_DELETE_SELF);
  EXPECT_EQ(ev[1].wd, swd);
  EXPECT_EQ(ev[1].mask, IN_IGNORED);
  EXPECT_EQ(ev[2].wd, dwd);
  EXPECT_EQ(ev[2].mask, IN_DELETE | IN_ISDIR);
  EXPECT_EQ(ev[2].name, "sub");
}

// A oneshot watch on a file in a watched directory: each write reaches
// the directory, the file's watch only the first (then IGNORED); nothing
// merges across them.
TEST_F(Inotify, OneshotBesideDirectoryWatch) {
  std::string f = dir_.Path("f");
  WriteFile(f, "x");
  int dwd = inotify_add_watch(fd_, dir_.path().c_str(), IN_MODIFY);
  int fwd = inotify_add_watch(fd_, f.c_str(), IN_MODIFY | IN_ONESHOT);
  int fd = open(f.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "a", 1), 1);
  ASSERT_EQ(write(fd, "b", 1), 1);
  close(fd);
  auto ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 4u) << Show(ev);
  EXPECT_EQ(ev[0].wd, dwd);
  EXPECT_EQ(ev[1].wd, fwd);
  EXPECT_EQ(ev[1].mask, IN_MODIFY);
  EXPECT_EQ(ev[2].wd, fwd);
  EXPECT_EQ(ev[2].mask, IN_IGNORED);
  EXPECT_EQ(ev[3].wd, dwd);
  EXPECT_EQ(ev[3].mask, IN_MODIFY);
}

TEST_F(Inotify, RmWatchQueuesIgnored) {
  int wd = inotify_add_watch(fd_, dir_.path().c_str(), IN_CREATE);
  ASSERT_GT(wd, 0);
  ASSERT_EQ(inotify_rm_watch(fd_, wd), 0);
  WriteFile(dir_.Path("after"), "x");
  auto ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 1u) << Show(ev);
  EXPECT_EQ(ev[0].wd, wd);
  EXPECT_EQ(ev[0].mask, IN_IGNORED);
}

TEST_F(Inotify, OneshotAndCoalescing) {
  std::string f = dir_.Path("f");
  WriteFile(f, "x");
  int wd = inotify_add_watch(fd_, f.c_str(), IN_MODIFY);
  int fd = open(f.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  // Identical consecutive events merge (inotify_merge()).
  ASSERT_EQ(write(fd, "a", 1), 1);
  ASSERT_EQ(write(fd, "b", 1), 1);
  auto ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 1u) << Show(ev);
  EXPECT_EQ(ev[0].mask, IN_MODIFY);

  ASSERT_EQ(inotify_add_watch(fd_, f.c_str(), IN_MODIFY | IN_ONESHOT), wd);
  ASSERT_EQ(write(fd, "c", 1), 1);
  ASSERT_EQ(write(fd, "d", 1), 1);
  close(fd);
  ev = Drain(fd_);
  ASSERT_EQ(ev.size(), 2u) << Show(ev);
  EXPECT_EQ(ev[0].mask, IN_MODIFY);
  EXPECT_EQ(ev[1].mask, IN_IGNORED);
  int wd2 = inotify_add_watch(fd_, f.c_str(), IN_MODIFY | IN_EXCL_UNLINK);
  EXPECT_GT(wd2, wd);
}

TEST_F(Inotify, ReadRecordsFionreadAndShortBuffer) {
  ASSERT_GT(inotify_add_watch(fd_, dir_.path().c_str(), IN_CREATE), 0);
  WriteFile(dir_.Path("a-name-of-17-char"), "x");
  int avail = -1;
  ASSERT_EQ(ioctl(fd_, FIONREAD, &avail), 0);
  // 17 characters and a NUL round up to 32 bytes of name.
  EXPECT_EQ(avail, static_cast<int>(sizeof(inotify_event) + 32));
  char small[sizeof(inotify_event) + 4];
  EXPECT_ERRNO(EINVAL, read(fd_, small, sizeof(small)));
  alignas(inotify_event) char buf[256];
  ASSERT_EQ(read(fd_, buf, sizeof(buf)), avail);
  auto* e = reinterpret_cast<inotify_event*>(buf);
  EXPECT_EQ(e->len, 32u);
  EXPECT_STREQ(e->name, "a-name-of-17-char");
}

TEST_F(Inotify, PollEpollAndBlockingRead) {
  ASSERT_GT(inotify_add_watch(fd_, dir_.path().c_str(), IN_CREATE), 0);
  pollfd p{fd_, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ee{};
  ee.events = EPOLLIN;
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd_, &ee), 0);
  WriteFile(dir_.Path("x"), "x");
  EXPECT_EQ(poll(&p, 1, 1000), 1);
  EXPECT_EQ(p.revents, POLLIN);
  EXPECT_EQ(epoll_wait(ep, &ee, 1, 1000), 1);
  Drain(fd_);
  EXPECT_EQ(poll(&p, 1, 0), 0);
  close(ep);

  // A blocking read waits for the next event.
  int bfd = inotify_init1(IN_CLOEXEC);
  ASSERT_GT(inotify_add_watch(bfd, dir_.path().c_str(), IN_CREATE), 0);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    WriteFile(dir_.Path("late"), "x");
  });
  alignas(inotify_event) char buf[256];
  ssize_t n = read(bfd, buf, sizeof(buf));
  writer.join();
  ASSERT_GT(n, 0);
  EXPECT_STREQ(reinterpret_cast<inotify_event*>(buf)->name, "late");
  close(bfd);
}

TEST_F(Inotify, QueueOverflow) {
  int max = 16384;
  std::ifstream("/proc/sys/fs/inotify/max_queued_events") >> max;
  std::string f = dir_.Path("f");
  WriteFile(f, "x");
  ASSERT_GT(inotify_add_watch(fd_, f.c_str(), IN_OPEN | IN_CLOSE_NOWRITE), 0);
  // Open and close alternate, so no two consecutive events merge.
  for (int i = 0; i < max / 2 + 8; ++i) close(open(f.c_str(), O_RDONLY | O_CLOEXEC));
  auto ev = Drain(fd_);
  ASSERT_EQ(ev.size(), static_cast<size_t>(max) + 1);
  EXPECT_EQ(ev.back().mask, IN_Q_OVERFLOW);
  EXPECT_EQ(ev.back().wd, -1);
  EXPECT_EQ(ev[ev.size() - 2].mask & IN_Q_OVERFLOW, 0u);
}

}  // namespace
}  // namespace syscall_test
