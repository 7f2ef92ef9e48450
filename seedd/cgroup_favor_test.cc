// Against the host's kernel (needs root and the cgroup v1 filesystem; skips
// without). Each test makes hierarchies of names of its own; the one test
// that attaches mounts does so in a mount namespace of its own, which goes
// with its process.
#include "seedd/cgroup_favor.h"

#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string Name(const char* what) {
  return absl::StrCat("seedd_favor_test_", what, "_", getpid());
}

// Whether the kernel has a v1 hierarchy named `name`: every process is in
// every hierarchy, so /proc/self/cgroup lists it while it lives.
bool HierarchyExists(const std::string& name) {
  return absl::StrContains(Slurp("/proc/self/cgroup"), absl::StrCat(":name=", name, ":/\n"));
}

// The kernel destroys a hierarchy whose last mount went asynchronously.
bool HierarchyGoes(const std::string& name) {
  for (int i = 0; i < 300 && HierarchyExists(name); ++i) usleep(10'000);
  return !HierarchyExists(name);
}

// Whether any mount this process can see is of that hierarchy.
bool MountedAnywhere(const std::string& name) {
  return absl::StrContains(Slurp("/proc/self/mountinfo"), absl::StrCat("name=", name));
}

bool CanMountCgroups() {
  return geteuid() == 0 && absl::StrContains(Slurp("/proc/filesystems"), "\tcgroup\n");
}

// A detached hierarchy of `name` without favordynmods, as another program
// could have made it; -1 on failure.
int PlainHierarchy(const std::string& name) {
  int fs = fsopen("cgroup", FSOPEN_CLOEXEC);
  if (fs < 0) return -1;
  int m = -1;
  if (fsconfig(fs, FSCONFIG_SET_FLAG, "none", nullptr, 0) == 0 &&
      fsconfig(fs, FSCONFIG_SET_STRING, "name", name.c_str(), 0) == 0 &&
      fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0) {
    m = fsmount(fs, FSMOUNT_CLOEXEC, 0);
  }
  close(fs);
  return m;
}

TEST(CgroupFavorTest, HoldsTheHierarchyDetachedAndDropsIt) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  const std::string name = Name("a");
  CgroupFavor f({.name = name});
  ASSERT_FALSE(f.Active());
  absl::Status s = f.Start();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(f.Active());
  // The kernel has it (this process in its root: nobody is moved there),
  // and no mount of it is attached anywhere.
  EXPECT_TRUE(HierarchyExists(name));
  EXPECT_FALSE(MountedAnywhere(name)) << Slurp("/proc/self/mountinfo");
  EXPECT_TRUE(f.Start().ok()) << "a second Start keeps what it holds";
  f.Stop();
  EXPECT_FALSE(f.Active());
  EXPECT_TRUE(HierarchyGoes(name));
}

// A seedd restarted the moment the last one stopped: the kernel is still
// tearing the old hierarchy of its name down (it refuses a new one with
// EBUSY meanwhile, 7 times in 10 on our VM), and Start waits for it.
TEST(CgroupFavorTest, StartsRightAfterTheLastHolderLetGo) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  const std::string name = Name("again");
  for (int i = 0; i < 20; ++i) {
    CgroupFavor f({.name = name});
    absl::Status s = f.Start();
    ASSERT_TRUE(s.ok()) << "start " << i << ": " << s;
    EXPECT_TRUE(f.Active());
  }
  EXPECT_TRUE(HierarchyGoes(name));
}

// A seedd killed with SIGKILL: its fd goes with it, and so do the mount
// and the hierarchy.
TEST(CgroupFavorTest, GoesWithAProcessKilledBySigkill) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  const std::string name = Name("killed");
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    CgroupFavor* f = new CgroupFavor({.name = name});  // never destroyed
    char ok = f->Start().ok() ? 'y' : 'n';
    if (write(p[1], &ok, 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  close(p[1]);
  char ok = 0;
  ASSERT_EQ(read(p[0], &ok, 1), 1);
  close(p[0]);
  EXPECT_EQ(ok, 'y');
  EXPECT_TRUE(HierarchyExists(name));
  EXPECT_FALSE(MountedAnywhere(name));
  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(HierarchyGoes(name));
}

// A program seedd runs (seedsc, which boots the sandboxes) does not inherit
// the fd: Stop drops the hierarchy while that program still runs.
TEST(CgroupFavorTest, AProgramItRunsDoesNotHoldIt) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  const std::string name = Name("exec");
  CgroupFavor f({.name = name});
  ASSERT_TRUE(f.Start().ok());
  char sleep_bin[] = "/bin/sleep", secs[] = "60";
  char* argv[] = {sleep_bin, secs, nullptr};
  pid_t child = -1;
  ASSERT_EQ(posix_spawn(&child, sleep_bin, nullptr, nullptr, argv, environ), 0);
  usleep(100'000);  // past its exec
  f.Stop();
  EXPECT_TRUE(HierarchyGoes(name));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

// A hierarchy of that name the kernel already has without favordynmods is
// reused as it is (cgroup1_root_to_use ignores the new options): Start says
// so, with the kernel's answer, instead of claiming the switch is on.
TEST(CgroupFavorTest, RefusesAHierarchyWithoutTheFlag) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  const std::string name = Name("plain");
  int plain = PlainHierarchy(name);
  ASSERT_GE(plain, 0) << strerror(errno);
  CgroupFavor f({.name = name});
  absl::Status s = f.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "without favordynmods")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "option or name mismatch")) << s;
  EXPECT_FALSE(f.Active());
  close(plain);
  EXPECT_TRUE(HierarchyGoes(name));
}

// Runs `body` in a child in a mount namespace of its own (private
// propagation): what it mounts goes with it. Returns body's error ("" = ok).
std::string InOwnMountNamespace(const std::function<std::string()>& body) {
  int p[2];
  if (pipe(p) != 0) return "pipe";
  pid_t pid = fork();
  if (pid < 0) return "fork";
  if (pid == 0) {
    close(p[0]);
    std::string err = "unshare(CLONE_NEWNS)";
    if (unshare(CLONE_NEWNS) == 0 &&
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0) {
      err = body();
    }
    if (write(p[1], err.data(), err.size()) < 0) _exit(1);
    _exit(0);
  }
  close(p[1]);
  std::string err;
  char buf[256];
  for (ssize_t n; (n = read(p[0], buf, sizeof(buf))) > 0;) err.append(buf, n);
  close(p[0]);
  waitpid(pid, nullptr, 0);
  return err;
}

// An older seedd attached its hierarchy at <state-dir>/cgroup-favordynmods
// and left it there when killed; something else may sit on top (two
// hierarchies here: the same one cannot be stacked on itself, EBUSY).
TEST(CgroupFavorTest, RemovesTheMountsAnOlderSeeddLeft) {
  if (!CanMountCgroups()) GTEST_SKIP() << "needs root and the cgroup filesystem";
  const std::string names[] = {Name("old"), Name("older")};
  const std::string dir = absl::StrCat("/tmp/seedd-favor-test-", getpid(), "/cgroup-favordynmods");
  std::string err = InOwnMountNamespace([&]() -> std::string {
    mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0700);
    mkdir(dir.c_str(), 0700);
    for (const std::string& name : names) {
      const std::string opts = absl::StrCat("none,name=", name);
      if (mount("cgroup", dir.c_str(), "cgroup", 0, opts.c_str()) != 0) {
        return absl::StrCat("mount ", name, ": ", strerror(errno));
      }
    }
    absl::StatusOr<int> n = RemoveLeftoverFavorMounts(dir);
    if (!n.ok()) return n.status().ToString();
    if (*n != 2) return absl::StrCat("unmounted ", *n, ", not 2");
    if (MountedAnywhere(names[0]) || MountedAnywhere(names[1])) return "a mount is left";
    if (access(dir.c_str(), F_OK) == 0) return "the directory is left";
    absl::StatusOr<int> again = RemoveLeftoverFavorMounts(dir);
    if (!again.ok() || *again != 0) return "a second call";
    return "";
  });
  rmdir(dir.c_str());
  rmdir(dir.substr(0, dir.rfind('/')).c_str());
  EXPECT_EQ(err, "");
  EXPECT_TRUE(HierarchyGoes(names[0]));
  EXPECT_TRUE(HierarchyGoes(names[1]));
}

}  // namespace
}  // namespace seedvisor::seedd
