#include "seedd/cgroup_favor.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "sentry/base/deadline.h"

namespace seedvisor::seedd {
namespace {

// How long Start waits for a dying hierarchy of its name to go.
constexpr absl::Duration kFavorDyingRootWait = absl::Seconds(3);

// What the kernel logged on an fs_context fd (fsopen, fspick): "e cgroup:
// option or name mismatch, ..." lines, read until it has no more.
std::string KernelLog(int fd) {
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    absl::string_view line = absl::StripTrailingAsciiWhitespace(absl::string_view(buf, n));
    absl::StrAppend(&out, out.empty() ? "" : "; ", line);
  }
  return out;
}

// Sets the hierarchy's options on the fs_context `fd` and runs `cmd`
// (FSCONFIG_CMD_CREATE or FSCONFIG_CMD_RECONFIGURE); an error names the
// step, errno and the kernel's log. `errno` is the failed call's on return.
absl::Status Configure(int fd, const std::string& name, unsigned cmd) {
  struct Step {
    unsigned op;
    const char* key;
    const char* value;
  };
  const Step steps[] = {{FSCONFIG_SET_FLAG, "none", nullptr},
                        {FSCONFIG_SET_STRING, "name", name.c_str()},
                        {FSCONFIG_SET_FLAG, "favordynmods", nullptr},
                        {cmd, nullptr, nullptr}};
  for (const Step& s : steps) {
    if (fsconfig(fd, s.op, s.key, s.value, 0) == 0) continue;
    int err = errno;
    std::string what = s.key == nullptr ? (cmd == FSCONFIG_CMD_CREATE ? "create" : "reconfigure")
                                        : s.key;
    std::string log = KernelLog(fd);
    errno = err;
    return absl::FailedPreconditionError(absl::StrCat("fsconfig(", what, "): ", strerror(err),
                                                      log.empty() ? "" : " (kernel: ", log,
                                                      log.empty() ? "" : ")"));
  }
  return absl::OkStatus();
}

// `path` as /proc/PID/mountinfo writes it (show_mountinfo's mangle: space,
// tab, newline and backslash as octal escapes).
std::string Mangle(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
      absl::StrAppend(&out, "\\", (c >> 6) & 7, (c >> 3) & 7, c & 7);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// How many cgroup (v1) mounts `mountinfo` shows at `dir`.
int CgroupMountsAt(const std::string& dir, const std::string& mountinfo) {
  char buf[PATH_MAX];
  const std::string want = Mangle(realpath(dir.c_str(), buf) != nullptr ? buf : dir);
  std::ifstream f(mountinfo);
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    // "36 25 0:31 / /run/seedd/cgroup-favordynmods rw,nosuid shared:14 - cgroup cgroup rw,..."
    std::vector<std::string> halves = absl::StrSplit(line, absl::MaxSplits(" - ", 1));
    if (halves.size() != 2) continue;
    std::vector<std::string> mine = absl::StrSplit(halves[0], ' ');
    std::vector<std::string> super = absl::StrSplit(halves[1], ' ');
    if (mine.size() >= 5 && mine[4] == want && !super.empty() && super[0] == "cgroup") ++n;
  }
  return n;
}

}  // namespace

CgroupFavor::CgroupFavor(CgroupFavorOptions o) : opts_(std::move(o)) {}

CgroupFavor::~CgroupFavor() { Stop(); }

absl::Status CgroupFavor::Start() {
  if (fd_ >= 0) return absl::OkStatus();
  const std::string what = absl::StrCat("the cgroup v1 hierarchy none,name=", opts_.name,
                                        ",favordynmods: ");
  // A hierarchy of this name whose last mount just went (a seedd stopped or
  // killed a moment ago) is still being torn down: cgroup1_get_tree asks
  // for a restart of the call, and the restarted fsconfig finds its fs
  // context spent and fails with EBUSY. mount(2) would have waited; here a
  // fresh context is tried again until the old root is gone (0-100 ms on
  // our 2-core VM, measured in 100 restarts), for kFavorDyingRootWait at most.
  const sentry::Deadline by = sentry::Deadline::In(kFavorDyingRootWait);
  int fs;
  for (;;) {
    fs = fsopen("cgroup", FSOPEN_CLOEXEC);
    if (fs < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, "fsopen(\"cgroup\"): ", strerror(errno)));
    }
    absl::Status s = Configure(fs, opts_.name, FSCONFIG_CMD_CREATE);
    if (s.ok()) break;
    const int err = errno;
    close(fs);
    if (err != EBUSY || by.Passed()) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, s.message(),
          err == EBUSY ? absl::StrCat(" (a hierarchy of that name was still going after ",
                                      absl::FormatDuration(kFavorDyingRootWait), ")")
                       : ""));
    }
    usleep(5000);
  }
  fd_ = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  int err = errno;
  close(fs);
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(what, "fsmount: ", strerror(err)));
  if (absl::Status s = CheckFlag(); !s.ok()) {
    Stop();
    return absl::FailedPreconditionError(absl::StrCat(what, s.message()));
  }
  return absl::OkStatus();
}

absl::Status CgroupFavor::CheckFlag() const {
  if (fd_ < 0) return absl::FailedPreconditionError("not held");
  int fc = fspick(fd_, "", FSPICK_EMPTY_PATH | FSPICK_CLOEXEC);
  if (fc < 0) return absl::FailedPreconditionError(absl::StrCat("fspick: ", strerror(errno)));
  absl::Status s = Configure(fc, opts_.name, FSCONFIG_CMD_RECONFIGURE);
  int err = errno;
  close(fc);
  if (!s.ok() && err == EINVAL) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the kernel has a hierarchy of that name without favordynmods and reuses it, ignoring "
        "new options; its ", s.message()));
  }
  return s;
}

bool CgroupFavor::Active() const { return CheckFlag().ok(); }

void CgroupFavor::Stop() {
  if (fd_ < 0) return;
  close(fd_);
  fd_ = -1;
}

absl::StatusOr<int> RemoveLeftoverFavorMounts(const std::string& dir,
                                              const std::string& mountinfo) {
  int n = 0;
  // Mounts stacked there by several killed runs: the top one goes first.
  while (CgroupMountsAt(dir, mountinfo) > 0 && n < 64) {
    if (umount2(dir.c_str(), MNT_DETACH) != 0) {
      return absl::InternalError(absl::StrCat("unmounting ", dir, ": ", strerror(errno)));
    }
    ++n;
  }
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat("removing ", dir, ": ", strerror(errno)));
  }
  return n;
}

}  // namespace seedvisor::seedd
