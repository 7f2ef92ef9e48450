// Conformance tests for what keeps a mount busy (umount2 EBUSY) and what
// must not: an open racing umount2 either holds the mount or misses it
// (do_umount()'s busy check and legitimize_mnt() under mount_lock), and
// another process reading a task's /proc files holds none of the task's
// mounts once the task is gone (free_fs_struct() at the last user).
// Each runs in a child in a private mount namespace of its own. They need
// CAP_SYS_ADMIN; each child returns a distinct code per failed check.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/mount_util.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

void SpinUntil(const std::function<bool()>& done) {
  while (!done()) sched_yield();
}

// A second thread that acts once in each round the main thread starts:
// `act(round, current)` runs when the thread sees the round begin (not at
// all if the round ended first, unless `late`), `current()` says whether
// the round is still on, and what `act` returns is Finish's answer.
//
//   RoundThread opener([&](int, auto current) { return open(...); });
//   opener.Start(round); ...race...; const int fd = opener.Finish(round);
class RoundThread {
 public:
  using Act = std::function<int(int, const std::function<bool()>&)>;
  explicit RoundThread(Act act, bool late = false)
      : act_(std::move(act)), late_(late), thread_([this] { Run(); }) {}
  ~RoundThread() {
    stop_.store(true);
    thread_.join();
  }
  void Start(int round) { go_.store(round); }
  // Ends `round`, waits for the thread to be done with it: act's result,
  // or -1 if it did not act.
  int Finish(int round) {
    go_.store(-round);
    SpinUntil([&] { return ack_.load() == round; });
    return result_.exchange(-1);
  }

 private:
  void Run() {
    for (int last = 0; !stop_.load();) {
      const int g = go_.load();
      const int r = g < 0 ? -g : g;
      if (r == 0 || r == last) {
        sched_yield();
        continue;
      }
      if (g > 0 || late_) result_.store(act_(r, [this, r] { return go_.load() == r; }));
      SpinUntil([&] { return go_.load() != r || stop_.load(); });
      last = r;
      ack_.store(r);
    }
  }
  const Act act_;
  const bool late_;
  std::atomic<int> go_{0};    // the round on (> 0), or -round: ended
  std::atomic<int> ack_{0};   // the last round the thread is done with
  std::atomic<int> result_{-1};
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: it runs on the members above
};

// umount2 without MNT_DETACH while another thread opens a file on the
// mount again and again: either the unmount fails with EBUSY (the file,
// or the walk to it, holds the mount) or it takes the mount away and the
// open fails (the name is gone with it). An open never ends with a file
// on the unmounted filesystem: that would be a file on a mount umount2
// called idle. Old seedsc: busy() was read before the mount lock and an
// open's hold was taken after its walk, unchecked.
TEST_F(MountNsTest, UmountRacingAnOpenNeverLeavesAFileOnTheGoneMount) {
  const std::string a = dir_ + "/a", x = a + "/x";
  const int result = InOwnNamespace([&] {
    RoundThread opener([&](int, const std::function<bool()>& current) {
      int fd = -1;
      while (fd < 0 && current()) fd = open(x.c_str(), O_RDONLY);
      return fd;
    });
    int bad = 0, busy = 0, gone = 0;
    // Natively a umount2 racing the opener's walks may take tens of ms
    // (RCU grace periods on a loaded host): rounds stop after 10 s.
    const int64_t until = NowMs() + 10000;
    for (int round = 1; round <= 1000 && bad == 0 && NowMs() < until; ++round) {
      struct stat st;
      if (!MountTmpfs(a) || !Touch(x) || stat(a.c_str(), &st) != 0) {
        bad = 2;
        break;
      }
      opener.Start(round);
      for (int spin = 0; spin < round % 8; ++spin) sched_yield();
      const int rc = umount2(a.c_str(), 0);
      const int err = errno;
      const int fd = opener.Finish(round);
      struct stat fst;
      if (rc == 0) {
        ++gone;
        if (fd >= 0 && fstat(fd, &fst) == 0 && fst.st_dev == st.st_dev) bad = 3;
      } else if (err != EBUSY) {
        bad = 4;
      } else {
        ++busy;
      }
      if (fd >= 0) close(fd);
      if (rc != 0 && bad == 0 && umount2(a.c_str(), 0) != 0) bad = 5;
    }
    // Both outcomes happen (a scheduling fact, not Linux's rule): only say so.
    printf("umount2 rounds: %d EBUSY, %d unmounted\n", busy, gone);
    fflush(stdout);
    return bad;
  });
  EXPECT_EQ(result, 0);
}

// The same race for opens that change the filesystem: O_CREAT of a new
// name (odd rounds) and O_TRUNC of a file with data (even rounds), on a
// tmpfs that a bind at b keeps reachable after a is unmounted. A round
// whose umount2 succeeded must find the tmpfs unchanged through b: an
// open that created or truncated there held the mount (umount2 EBUSY);
// one that came after the unmount acts on the directory below a. Old
// seedsc: the walk held nothing, the create or truncate went to the
// unmounted tmpfs, and then the open walked again (a second file below
// a): a change on a filesystem whose file was not returned.
TEST_F(MountNsTest, UmountRacingACreateOrTruncateChangesNothingOnTheGoneMount) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  const int result = InOwnNamespace([&] {
    RoundThread opener([&](int r, const std::function<bool()>& current) {
      const std::string path = a + (r % 2 ? "/new" : "/data");
      const int flags = r % 2 ? O_WRONLY | O_CREAT : O_WRONLY | O_TRUNC;
      int fd = -1;
      while (fd < 0 && current()) fd = open(path.c_str(), flags, 0644);
      return fd;
    });
    int bad = 0, busy = 0, gone = 0;
    const int64_t until = NowMs() + 10000;
    for (int round = 1; round <= 1000 && bad == 0 && NowMs() < until; ++round) {
      if (!MountTmpfs(a)) {
        bad = 2;
        break;
      }
      const int fd0 = open((a + "/data").c_str(), O_WRONLY | O_CREAT, 0644);
      const bool wrote = fd0 >= 0 && write(fd0, "data", 4) == 4;
      if (fd0 >= 0) close(fd0);
      if (!wrote || mount(a.c_str(), b.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        bad = 2;
        break;
      }
      opener.Start(round);
      // Each round starts its side of the race a little later: the
      // windows a fault would need are a few microseconds wide.
      for (int spin = 0; spin < round % 41; ++spin) sched_yield();
      const int rc = umount2(a.c_str(), 0);
      const int err = errno;
      const int fd = opener.Finish(round);
      if (rc == 0) {
        ++gone;
        struct stat st;
        if (round % 2 && Exists(b + "/new")) bad = 3;
        if (!(round % 2) && (stat((b + "/data").c_str(), &st) != 0 || st.st_size != 4)) bad = 4;
      } else if (err != EBUSY) {
        bad = 5;
      } else {
        ++busy;
      }
      if (fd >= 0) close(fd);
      if (rc != 0 && bad == 0 && umount2(a.c_str(), 0) != 0) bad = 6;
      if (umount2(b.c_str(), 0) != 0 && bad == 0) bad = 7;
      unlink((a + "/new").c_str());  // made below a by an open after the unmount
    }
    printf("umount2 rounds: %d EBUSY, %d unmounted\n", busy, gone);
    fflush(stdout);
    return bad;
  });
  EXPECT_EQ(result, 0);
}

// A child whose working directory is on a tmpfs exits while two threads
// read its /proc files (status, mounts, mountinfo, ns/mnt); once it is
// reaped, umount2 of the tmpfs works every time: none of those reads holds
// the child's working directory (proc_pid_status() reads the umask only,
// mounts_open_common() holds the root, an ns link the namespace), and the
// child's own hold went with its exit (exit_fs()). /proc/PID/cwd is not
// read: its readlink holds the directory during d_path() (get_fs_pwd()),
// so natively that read may make umount2 EBUSY for a moment too. Old
// seedsc: a reader's copy of the child's fs context, kept past the exit,
// held the tmpfs (exit 4).
TEST_F(MountNsTest, ReadingAnExitedProcessProcFilesLeavesItsMountIdle) {
  const std::string a = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a)) return 2;
    const std::vector<std::string> files = {"status", "mountinfo", "mounts", "ns/mnt"};
    ProcReaders readers({files, files});
    int bad = 0;
    const int64_t until = NowMs() + 10000;  // forks are slow on a loaded host
    for (int i = 0; i < 300 && bad == 0 && NowMs() < until; ++i) {
      int go[2];
      if (pipe(go) != 0) {
        bad = 3;
        break;
      }
      const pid_t c = fork();
      if (c == 0) {
        close(go[1]);
        char byte;
        if (chdir(a.c_str()) != 0) _exit(1);
        (void)!read(go[0], &byte, 1);  // until the parent closes its end
        _exit(0);
      }
      close(go[0]);
      readers.Watch(c);
      readers.AwaitRounds(2);  // the readers are at it when the child exits
      close(go[1]);
      if (c < 0 || WaitCode(c) != 0) {
        bad = 3;
      } else if (umount2(a.c_str(), 0) != 0) {
        bad = 4;
      } else if (!MountTmpfs(a)) {
        bad = 5;
      }
    }
    return bad;
  });
  EXPECT_EQ(result, 0);
}

// rmdir and rename of a mount point are EBUSY in a namespace where it is
// one, through whichever mount they reach it: here a bind of its parent's
// filesystem, which reaches the same directory (is_local_mountpoint()
// looks at the dentry every mount of a filesystem shares). In a namespace
// where it is none (the mount was made after the copy) rmdir works, and
// the mount goes from the namespace that had it (detach_mounts()). Old
// seedsc: rmdir through the bind removed the mount point (exit 4).
TEST_F(MountNsTest, RemovingAMountPointIsBusyWhereverItIsReachedFrom) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || mkdir((a + "/sub").c_str(), 0755) != 0 ||
        mkdir((a + "/late").c_str(), 0755) != 0 || mkdir((a + "/empty").c_str(), 0755) != 0 ||
        !MountTmpfs(a + "/sub")) {
      return 2;
    }
    if (mount(a.c_str(), b.c_str(), nullptr, MS_BIND, nullptr) != 0) return 3;
    if (rmdir((b + "/sub").c_str()) != -1 || errno != EBUSY) return 4;
    if (rename((b + "/sub").c_str(), (b + "/moved").c_str()) != -1 || errno != EBUSY) return 5;
    if (rename((b + "/empty").c_str(), (b + "/sub").c_str()) != -1 || errno != EBUSY) return 6;
    if (!Exists(a + "/sub") || !MountsShow("self", a + "/sub")) return 7;
    int go[2];
    if (pipe(go) != 0) return 8;
    const pid_t child = ForkWith(CLONE_NEWNS);
    if (child < 0) return 8;
    if (child == 0) {
      char byte;
      close(go[1]);
      if (read(go[0], &byte, 1) != 0) _exit(1);  // until the parent has mounted
      _exit(rmdir((a + "/late").c_str()) == 0 ? 0 : 2);
    }
    close(go[0]);
    const bool mounted = MountTmpfs(a + "/late");
    close(go[1]);
    if (!mounted) return 9;
    if (WaitCode(child) != 0) return 10;
    if (MountsShow("self", a + "/late") || Exists(a + "/late")) return 11;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

// A mount and an rmdir of its mount point racing: one of them wins (the
// mount, and rmdir is EBUSY; or rmdir, and the mount is ENOENT: Linux's
// lock_mount() refuses a dentry rmdir marked cant_mount()), never both:
// that would leave a mount on a removed directory, which no path reaches
// to unmount. Odd rounds remove the directory through a bind of its
// parent's filesystem (another mount of the same directory). Old seedsc:
// the rmdir's check and removal were not one step with respect to mount(),
// which did not look at whether its dentry was removed meanwhile (exit 3).
TEST_F(MountNsTest, MountRacingRmdirOfItsMountPointNeverLandsOnARemovedDirectory) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || mount(a.c_str(), b.c_str(), nullptr, MS_BIND, nullptr) != 0) return 2;
    const std::string x = a + "/x";
    // One mount each round, also if the rmdir was over before it began.
    RoundThread mounter(
        [&](int, const std::function<bool()>&) { return MountTmpfs(x) ? 0 : errno; },
        /*late=*/true);
    int bad = 0, mounted = 0, removed = 0;
    const int64_t until = NowMs() + 10000;
    for (int round = 1; round <= 1000 && bad == 0 && NowMs() < until; ++round) {
      if (mkdir(x.c_str(), 0755) != 0) {
        bad = 4;
        break;
      }
      mounter.Start(round);
      // Each round starts its side of the race a little later: the
      // windows a fault would need are a few microseconds wide.
      for (int spin = 0; spin < round % 41; ++spin) sched_yield();
      const int gone = rmdir(((round % 2 ? b : a) + "/x").c_str());
      const int err = errno;
      const int mount_err = mounter.Finish(round);
      if (gone == 0 && mount_err == 0) {
        bad = 3;
      } else if (gone == 0) {
        ++removed;
        if (mount_err != ENOENT) bad = 5;
      } else if (err != EBUSY || mount_err != 0) {
        bad = 6;
      } else {
        ++mounted;
        if (umount2(x.c_str(), 0) != 0 || rmdir(x.c_str()) != 0) bad = 7;
      }
    }
    printf("rounds: %d mounted first, %d removed first\n", mounted, removed);
    fflush(stdout);
    return bad;
  });
  EXPECT_EQ(result, 0);
}

// A file mounted on is a mount point under its own name in its own
// directory only: another hard link of it, in another directory or under
// another name, is a different dentry, and unlink and rename of that work
// (is_local_mountpoint() asks of the dentry). Old seedsc: any dentry of
// the same object was the mount point (exit 4).
TEST_F(MountNsTest, AHardLinkOfAMountedFileIsNoMountPoint) {
  const std::string a = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || !Touch(a + "/f") || !Touch(a + "/src") ||
        mkdir((a + "/d").c_str(), 0755) != 0) {
      return 2;
    }
    if (link((a + "/f").c_str(), (a + "/d/f").c_str()) != 0 ||
        link((a + "/f").c_str(), (a + "/g").c_str()) != 0 ||
        link((a + "/f").c_str(), (a + "/h").c_str()) != 0) {
      return 2;
    }
    if (mount((a + "/src").c_str(), (a + "/f").c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return 3;
    }
    if (unlink((a + "/d/f").c_str()) != 0) return 4;
    if (unlink((a + "/g").c_str()) != 0) return 5;
    if (rename((a + "/h").c_str(), (a + "/d/f").c_str()) != 0) return 6;
    if (unlink((a + "/f").c_str()) != -1 || errno != EBUSY) return 7;
    if (!MountsShow("self", a + "/f")) return 8;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

}  // namespace
}  // namespace syscall_test
