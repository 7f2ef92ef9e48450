// /proc/PID/mountinfo and /proc/PID/mounts against stat(2) (issue 17,
// proc(5)): each mountinfo line is well formed, ids are unique and parents
// exist, the device of each mount (major:minor) is the st_dev that stat(2)
// and fstat(2) show for the files under it, different filesystems have
// different devices (what tells a mount point apart: os.path.ismount,
// find -xdev), and /proc/PID/mounts lists the same mount points in the
// same order.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct MountLine {
  int id = 0, parent = 0;
  unsigned major = 0, minor = 0;
  std::string root, point, fstype;
  std::string opts, super;  // the mount's own options, the superblock's
};

std::vector<MountLine> ParseMountinfo(const std::string& text) {
  std::vector<MountLine> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    MountLine m;
    std::string dev, opts, field;
    EXPECT_TRUE(static_cast<bool>(f >> m.id >> m.parent >> dev >> m.root >> m.point >> opts))
        << line;
    EXPECT_EQ(sscanf(dev.c_str(), "%u:%u", &m.major, &m.minor), 2) << line;
    // Optional fields up to "-", then fstype, source, super options.
    bool sep = false;
    while (f >> field) {
      if (field == "-") {
        sep = true;
        break;
      }
    }
    EXPECT_TRUE(sep) << "no ' - ' separator: " << line;
    std::string source, super;
    EXPECT_TRUE(static_cast<bool>(f >> m.fstype >> source >> super)) << line;
    EXPECT_TRUE(opts.rfind("rw", 0) == 0 || opts.rfind("ro", 0) == 0) << line;
    m.root = Unescape(m.root);
    m.point = Unescape(m.point);
    m.opts = opts;
    m.super = super;
    out.push_back(m);
  }
  return out;
}

TEST(ProcMountsTest, MountinfoIsWellFormedAndMatchesStat) {
  std::vector<MountLine> ms = ParseMountinfo(ReadFile("/proc/self/mountinfo"));
  ASSERT_FALSE(ms.empty());
  std::set<int> ids;
  for (const MountLine& m : ms) EXPECT_TRUE(ids.insert(m.id).second) << "id " << m.id << " twice";
  // Every parent is another mount of the list, except the root's (outside
  // the namespace natively; itself in the sandbox).
  int roots = 0;
  for (const MountLine& m : ms) {
    if (m.parent == m.id || !ids.count(m.parent)) ++roots;
  }
  EXPECT_EQ(roots, 1);
  // The last mount at each mount point is the one its path reaches.
  std::map<std::string, MountLine> visible;
  for (const MountLine& m : ms) visible[m.point] = m;
  int checked = 0;
  for (const auto& [point, m] : visible) {
    // btrfs shows a subvolume's own st_dev, not the superblock's.
    if (m.fstype == "btrfs" || m.fstype == "autofs") continue;
    // A mount hidden under a later one mounted over a parent directory.
    bool hidden = false;
    for (const auto& [other, o] : visible) {
      if (o.id > m.id && other != point && point.rfind(other + "/", 0) == 0) hidden = true;
      if (o.id > m.id && other == "/" && point != "/") hidden = true;
    }
    if (hidden) continue;
    struct stat st {};
    if (stat(point.c_str(), &st) != 0) continue;  // e.g. not ours to look at
    EXPECT_EQ(major(st.st_dev), m.major) << point << " (" << m.fstype << ")";
    EXPECT_EQ(minor(st.st_dev), m.minor) << point << " (" << m.fstype << ")";
    ++checked;
  }
  EXPECT_GE(checked, 2);  // at least / and /proc
}

// show_mountinfo(): the sixth field holds the mount's own flags (rw/ro,
// nosuid, nodev, noexec, noatime, nodiratime, relatime, nosymfollow), the
// last one the superblock's rw/ro and the filesystem's own options, never
// a per-mount flag (issue 17).
TEST(ProcMountsTest, MountAndSuperOptionsInTheirColumns) {
  const std::set<std::string> mount_flags = {"nosuid",  "nodev",      "noexec",     "noatime",
                                             "nodiratime", "relatime", "nosymfollow"};
  auto split = [](const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    std::string o;
    while (std::getline(in, o, ',')) out.push_back(o);
    return out;
  };
  bool saw_proc = false;
  for (const MountLine& m : ParseMountinfo(ReadFile("/proc/self/mountinfo"))) {
    std::vector<std::string> opts = split(m.opts), super = split(m.super);
    ASSERT_FALSE(opts.empty());
    ASSERT_FALSE(super.empty());
    EXPECT_TRUE(super[0] == "rw" || super[0] == "ro") << m.point << ": " << m.super;
    for (size_t i = 1; i < opts.size(); ++i) {
      EXPECT_TRUE(mount_flags.count(opts[i])) << m.point << ": " << m.opts;
    }
    for (const std::string& o : super) {
      EXPECT_FALSE(mount_flags.count(o)) << m.point << ": " << m.super;
    }
    // (Which flags /proc has depends on who mounted it: this host's is
    // rw,relatime, the sandbox's rw,nosuid,nodev,noexec.)
    if (m.point == "/proc") saw_proc = true;
  }
  EXPECT_TRUE(saw_proc);
}

TEST(ProcMountsTest, ProcAndRootHaveTheirOwnDevices) {
  struct stat root {}, proc {}, self {}, status {}, fst {};
  ASSERT_EQ(stat("/", &root), 0);
  ASSERT_EQ(stat("/proc", &proc), 0);
  ASSERT_EQ(stat("/proc/self", &self), 0);
  ASSERT_EQ(stat("/proc/self/status", &status), 0);
  EXPECT_NE(proc.st_dev, root.st_dev);
  EXPECT_NE(proc.st_dev, 0u);
  EXPECT_EQ(self.st_dev, proc.st_dev);
  EXPECT_EQ(status.st_dev, proc.st_dev);
  int fd = open("/proc/self/status", O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fstat(fd, &fst), 0);
  close(fd);
  EXPECT_EQ(fst.st_dev, proc.st_dev);
  // Every mount whose filesystem differs from its parent's has a device of
  // its own (mount points of distinct filesystems are told apart by st_dev).
  std::vector<MountLine> ms = ParseMountinfo(ReadFile("/proc/self/mountinfo"));
  std::map<std::pair<unsigned, unsigned>, std::string> fstype_of;
  for (const MountLine& m : ms) {
    auto [it, fresh] = fstype_of.emplace(std::make_pair(m.major, m.minor), m.fstype);
    if (!fresh) {
      EXPECT_EQ(it->second, m.fstype) << "two filesystems share " << m.major << ":" << m.minor;
    }
    EXPECT_FALSE(m.major == 0 && m.minor == 0) << m.point;
  }
}

TEST(ProcMountsTest, MountsListsTheSamePointsInOrder) {
  std::vector<MountLine> ms = ParseMountinfo(ReadFile("/proc/self/mountinfo"));
  std::istringstream in(ReadFile("/proc/self/mounts"));
  std::string line;
  std::vector<std::string> points;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string source, point, fstype, opts;
    int freq = -1, pass = -1;
    ASSERT_TRUE(static_cast<bool>(f >> source >> point >> fstype >> opts >> freq >> pass)) << line;
    EXPECT_EQ(freq, 0);
    EXPECT_EQ(pass, 0);
    points.push_back(Unescape(point));
  }
  ASSERT_EQ(points.size(), ms.size());
  for (size_t i = 0; i < ms.size(); ++i) EXPECT_EQ(points[i], ms[i].point);
  // A child sees the same table.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t c = fork();
  if (c == 0) {
    close(fds[0]);
    pause();
    _exit(0);
  }
  close(fds[1]);
  EXPECT_EQ(ReadFile("/proc/" + std::to_string(c) + "/mountinfo"), ReadFile("/proc/self/mountinfo"));
  kill(c, SIGKILL);
  waitpid(c, nullptr, 0);
  close(fds[0]);
}

}  // namespace
}  // namespace syscall_test
