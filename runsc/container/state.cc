#include "runsc/container/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace seedvisor::container {
namespace {

using json = nlohmann::json;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

std::function<void(const std::string&)>& CreateDirHook() {
  static auto* hook = new std::function<void(const std::string&)>;
  return *hook;
}

// SimulateNoRenameNoReplaceForTest's state.
struct NoReplaceSimulation {
  bool on = false;
  std::function<void()> before_rename;
};
NoReplaceSimulation& Simulation() {
  static auto* sim = new NoReplaceSimulation;
  return *sim;
}

absl::Status ExistsError(const std::string& root, const std::string& id) {
  struct stat sb;
  const bool recorded = stat((StateDir(root, id) + "/state.json").c_str(), &sb) == 0;
  return absl::AlreadyExistsError(absl::StrCat(
      "container with id \"", id, "\" already exists",
      recorded ? "" : absl::StrCat(" (without a state: a create or fork that was killed, or "
                                   "one under way; `seedsc delete --force ", id, "` removes it)")));
}

// The file system `path` is on, for an error message: "nfs (statfs type
// 0x6969)", or the type alone for one not named here.
std::string FileSystemOf(const std::string& path) {
  struct statfs sf;
  if (statfs(path.c_str(), &sf) != 0) return "unknown";
  constexpr std::pair<uint64_t, const char*> kNames[] = {
      {NFS_SUPER_MAGIC, "nfs"},
      {OVERLAYFS_SUPER_MAGIC, "overlay"},
      {TMPFS_MAGIC, "tmpfs"},
      {FUSE_SUPER_MAGIC, "fuse"},
  };
  const uint64_t magic = static_cast<uint64_t>(sf.f_type);
  const std::string type = absl::StrFormat("statfs type %#x", magic);
  for (const auto& [m, name] : kNames) {
    if (m == magic) return absl::StrCat(name, " (", type, ")");
  }
  return type;
}

// rename(2) where renameat2's RENAME_NOREPLACE is missing (EINVAL: older
// overlayfs and FUSE, NFS; ENOSYS: a kernel before 3.15): `to` checked
// absent, then renamed onto, both under an exclusive flock of <root>
// itself. Not on NFS: there flock is emulated with fcntl locks, which need
// a file open for writing, and a directory cannot be: the lock fails and
// the create with it, in one line naming the file system (a --root on NFS
// is not supported). Race-free among CreateDir's callers, the only makers of dirs in
// <root>: on one root all of them find RENAME_NOREPLACE missing and take
// this lock, so no other can put a dir at `to` between the check and the
// rename. Without it, a rename(2) would replace one made meanwhile (it
// replaces an empty dir, and a new container's stays empty until its
// state is written): two creates of one id would both succeed. A delete
// only removes dirs, which the rename does not mind.
int RenameCheckedUnderRootLock(const std::string& root, const std::string& from,
                               const std::string& to, std::string* lock_error) {
  const int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || flock(fd, LOCK_EX) != 0) {
    const int e = errno;
    *lock_error = absl::StrCat("locking --root ", root,
                               " to rename without RENAME_NOREPLACE, which its file system, ",
                               FileSystemOf(root), ", lacks: ", std::strerror(e));
    if (fd >= 0) close(fd);
    return -1;
  }
  struct stat sb;
  int err = 0;
  if (lstat(to.c_str(), &sb) == 0) {
    err = EEXIST;
  } else {
    if (const auto& hook = Simulation().before_rename) hook();
    if (rename(from.c_str(), to.c_str()) != 0) err = errno;
  }
  close(fd);  // the lock goes with it
  return err;
}

}  // namespace

absl::Status ValidateId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("container id must not be empty");
  if (id == "." || id == "..") return absl::InvalidArgumentError("invalid container id \"" + id + "\"");
  for (char c : id) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '+')) {
      return absl::InvalidArgumentError(absl::StrCat("invalid container id \"", id,
                                                     "\": use letters, digits, _ . - +"));
    }
  }
  if (id.size() > 1024) return absl::InvalidArgumentError("container id too long");
  return absl::OkStatus();
}

std::string StateDir(const std::string& root, const std::string& id) {
  return absl::StrCat(root, "/", id);
}

absl::Status SaveState(const std::string& root, const State& st) {
  json j = {{"ociVersion", st.oci_version},
            {"id", st.id},
            {"bundle", st.bundle},
            {"sandboxPid", st.sandbox_pid},
            {"sandboxStartTime", st.sandbox_start_time},
            {"sandboxBootId", st.sandbox_boot_id},
            {"created", st.created},
            {"owner", st.owner},
            {"controlAddress", st.control_address},
            {"cgroupsPath", st.cgroups_path},
            {"rootfs", st.rootfs},
            {"sandboxId", st.sandbox_id.empty() ? st.id : st.sandbox_id},
            {"containerPid", st.container_pid},
            {"annotations", st.annotations}};
  std::string dir = StateDir(root, st.id);
  std::string tmp = dir + "/.state.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Errno("writing " + tmp);
    out << j.dump(2) << "\n";
    if (!out.good()) return Errno("writing " + tmp);
  }
  if (rename(tmp.c_str(), (dir + "/state.json").c_str()) != 0) return Errno("renaming " + tmp);
  return absl::OkStatus();
}

absl::StatusOr<State> LoadState(const std::string& root, const std::string& id) {
  if (absl::Status s = ValidateId(id); !s.ok()) return s;
  std::string path = StateDir(root, id) + "/state.json";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("container \"", id, "\" does not exist"));
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not valid JSON"));
  }
  State st;
  try {
    st.oci_version = j.value("ociVersion", "1.0.2");
    st.id = j.value("id", id);
    st.bundle = j.value("bundle", "");
    st.sandbox_pid = j.value("sandboxPid", 0);
    st.sandbox_start_time = j.value("sandboxStartTime", uint64_t{0});
    st.sandbox_boot_id = j.value("sandboxBootId", "");
    st.created = j.value("created", "");
    st.owner = j.value("owner", "");
    st.control_address = j.value("controlAddress", "");
    st.cgroups_path = j.value("cgroupsPath", "");
    st.rootfs = j.value("rootfs", "");
    st.sandbox_id = j.value("sandboxId", st.id);
    st.container_pid = j.value("containerPid", 0);
    if (j.contains("annotations") && j["annotations"].is_object()) {
      st.annotations = j["annotations"].get<std::map<std::string, std::string>>();
    }
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(path, ": ", e.what()));
  }
  return st;
}

absl::Status RemoveStateDir(const std::string& root, const std::string& id) {
  std::error_code ec;
  std::filesystem::remove_all(StateDir(root, id), ec);
  if (ec) return absl::InternalError(absl::StrCat("removing ", StateDir(root, id), ": ", ec.message()));
  return absl::OkStatus();
}

std::vector<std::string> ListIds(const std::string& root) {
  std::vector<std::string> ids;
  DIR* d = opendir(root.c_str());
  if (d == nullptr) return ids;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (stat((StateDir(root, name) + "/state.json").c_str(), &st) == 0) ids.push_back(name);
  }
  closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

absl::StatusOr<Lock> Lock::Acquire(const std::string& root, const std::string& id) {
  std::string dir = StateDir(root, id);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("container \"", id, "\" does not exist"));
  if (flock(fd, LOCK_EX) != 0) {
    close(fd);
    return Errno("locking " + dir);
  }
  return Lock(fd);
}

absl::StatusOr<Lock> Lock::CreateDir(const std::string& root, const std::string& id) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating --root ", root, ": ", ec.message()));
  const std::string dir = StateDir(root, id);
  // A delete that took the temporary dir for a leftover (seedd's start
  // removes every dir without a state whose lock is free) before it was
  // locked: the rename finds it gone, and it is made again.
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::string temp = StateDir(root, ".new.XXXXXX");
    if (mkdtemp(temp.data()) == nullptr) return Errno("creating a state dir in " + root);
    if (const auto& hook = CreateDirHook()) hook(temp.substr(root.size() + 1));
    const int fd = open(temp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) continue;
    if (fd < 0) return Errno("opening " + temp);
    Lock lock(fd);
    if (flock(fd, LOCK_EX) != 0) {
      rmdir(temp.c_str());
      return Errno("locking " + temp);
    }
    // mkdtemp's 0700: others (a container's user) reach the control socket.
    if (fchmod(fd, 0711) != 0) {
      const absl::Status s = Errno("making " + temp + " mode 0711");
      rmdir(temp.c_str());
      return s;
    }
    int err = 0;
    const bool simulated = Simulation().on;
    if (simulated ||
        renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, dir.c_str(), RENAME_NOREPLACE) != 0) {
      err = simulated ? EINVAL : errno;
    }
    std::string lock_error;
    if (err == EINVAL || err == ENOSYS) {
      err = RenameCheckedUnderRootLock(root, temp, dir, &lock_error);
    }
    if (err == 0) return lock;
    if (err == ENOENT) continue;
    rmdir(temp.c_str());
    if (err == EEXIST || err == ENOTEMPTY) return ExistsError(root, id);
    if (!lock_error.empty()) return absl::InternalError(lock_error);
    return absl::InternalError(
        absl::StrCat("renaming ", temp, " to ", dir, ": ", std::strerror(err)));
  }
  return absl::UnavailableError(
      absl::StrCat("creating ", dir, ": its temporary dir was removed under it 5 times"));
}

void SetCreateDirHookForTest(std::function<void(const std::string& name)> hook) {
  CreateDirHook() = std::move(hook);
}

void SimulateNoRenameNoReplaceForTest(bool on, std::function<void()> before_rename) {
  Simulation() = {on, std::move(before_rename)};
}

Lock::~Lock() {
  if (fd_ >= 0) close(fd_);
}

std::string OciStateJson(const State& st, const std::string& status, int indent) {
  // runtime-spec: pid is required while the container is created or running.
  json j = {{"ociVersion", st.oci_version}, {"id", st.id}, {"status", status}};
  j["pid"] = status == "stopped" ? 0 : st.pid();
  j["bundle"] = st.bundle;
  if (!st.annotations.empty()) j["annotations"] = st.annotations;
  return j.dump(indent);
}

bool SandboxAlive(const State& st) { return ProcessAlive(st.sandbox()); }

std::string NowRfc3339() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  snprintf(out, sizeof(out), "%s.%09ldZ", buf, ts.tv_nsec);
  return out;
}

}  // namespace seedvisor::container
