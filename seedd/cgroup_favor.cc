#include "seedd/cgroup_favor.h"

#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace seedvisor::seedd {
namespace {

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

// The path with symlinks resolved (what mountinfo shows); `path` itself if
// it cannot be resolved.
std::string Resolved(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

}  // namespace

CgroupFavor::CgroupFavor(CgroupFavorOptions o) : opts_(std::move(o)) {}

CgroupFavor::~CgroupFavor() { Stop(); }

absl::Status CgroupFavor::Start() {
  if (mkdir(opts_.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("making ", opts_.dir, ": ", strerror(errno)));
  }
  // An earlier seedd's (killed before it could unmount): mounts must not
  // pile up there.
  while (Active() && umount2(opts_.dir.c_str(), MNT_DETACH) == 0) {
  }
  const std::string data = absl::StrCat("none,name=", opts_.name, ",favordynmods");
  if (mount("cgroup", opts_.dir.c_str(), "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            data.c_str()) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("mounting a cgroup v1 hierarchy (-o ", data,
                                                      ") at ", opts_.dir, ": ", strerror(errno)));
  }
  mounted_ = true;
  if (!Active()) {
    // A hierarchy of that name made earlier without the flag (the kernel
    // reuses it and ignores the new options).
    Stop();
    return absl::FailedPreconditionError(
        absl::StrCat("the cgroup v1 hierarchy name=", opts_.name, " mounted at ", opts_.dir,
                     " does not show favordynmods in ", opts_.mountinfo));
  }
  return absl::OkStatus();
}

bool CgroupFavor::Active() const {
  const std::string want = Mangle(Resolved(opts_.dir));
  std::ifstream f(opts_.mountinfo);
  std::string line;
  while (std::getline(f, line)) {
    // "36 25 0:31 / /run/seedd/cgroup-favordynmods rw,nosuid shared:14 - cgroup cgroup
    //  rw,name=seedd_favordynmods,favordynmods"
    std::vector<std::string> halves = absl::StrSplit(line, absl::MaxSplits(" - ", 1));
    if (halves.size() != 2) continue;
    std::vector<std::string> mine = absl::StrSplit(halves[0], ' ');
    std::vector<std::string> super = absl::StrSplit(halves[1], ' ');
    if (mine.size() < 5 || mine[4] != want || super.size() < 3 || super[0] != "cgroup") continue;
    for (absl::string_view opt : absl::StrSplit(super[2], ',')) {
      if (opt == "favordynmods") return true;
    }
  }
  return false;
}

void CgroupFavor::Stop() {
  if (!mounted_) return;
  mounted_ = false;
  umount2(opts_.dir.c_str(), MNT_DETACH);
  rmdir(opts_.dir.c_str());
}

}  // namespace seedvisor::seedd
