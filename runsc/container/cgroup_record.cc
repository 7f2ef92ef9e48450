#include "runsc/container/cgroup_record.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace seedvisor::container {
namespace {

using json = nlohmann::json;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// The inode of the directory `path`, or 0 if there is none.
ino_t DirInode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  return st.st_ino;
}

}  // namespace

absl::StatusOr<CgroupRecord> CgroupRecord::Open(const std::string& root) {
  if (root.empty()) return absl::InvalidArgumentError("cgroup record: --root is empty");
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating --root ", root, ": ", ec.message()));
  const int fd = open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("opening --root " + root);
  int r;
  while ((r = flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
  }
  if (r != 0) {
    const absl::Status s = Errno("locking --root " + root + " for its cgroup record");
    close(fd);
    return s;
  }
  CgroupRecord rec(root, fd);
  const std::string file = absl::StrCat(root, "/", kFileName);
  std::ifstream in(file);
  if (!in) {
    if (errno == ENOENT) return rec;
    return Errno("reading " + file);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("dirs") || !j["dirs"].is_object()) {
    return absl::DataLossError(
        absl::StrCat(file, ": not a cgroup record ({\"dirs\": {path: inode}}); seedsc writes it"));
  }
  for (const auto& [path, ino] : j["dirs"].items()) {
    if (!ino.is_number_unsigned()) {
      return absl::DataLossError(absl::StrCat(file, ": dirs.", path, ": not an inode number"));
    }
    rec.dirs_[path] = ino.get<ino_t>();
  }
  return rec;
}

CgroupRecord::CgroupRecord(CgroupRecord&& o) noexcept
    : root_(std::move(o.root_)), lock_fd_(o.lock_fd_), dirs_(std::move(o.dirs_)) {
  o.lock_fd_ = -1;
}

CgroupRecord::~CgroupRecord() {
  if (lock_fd_ >= 0) close(lock_fd_);  // the lock goes with it
}

std::optional<ino_t> CgroupRecord::Recorded(const std::string& dir) const {
  auto it = dirs_.find(dir);
  if (it == dirs_.end()) return std::nullopt;
  return it->second;
}

bool CgroupRecord::Made(const std::string& dir) const {
  const std::optional<ino_t> ino = Recorded(dir);
  if (!ino) return false;
  const ino_t now = DirInode(dir);
  return now != 0 && (*ino == kPending || now == *ino);
}

void CgroupRecord::Intend(const std::string& dir) { dirs_[dir] = kPending; }

void CgroupRecord::Add(const std::string& dir) {
  if (const ino_t ino = DirInode(dir); ino != 0) {
    dirs_[dir] = ino;
  } else {
    dirs_.erase(dir);
  }
}

void CgroupRecord::Drop(const std::string& dir, std::optional<ino_t> ino) {
  auto it = dirs_.find(dir);
  if (it != dirs_.end() && (!ino || it->second == *ino)) dirs_.erase(it);
}

void CgroupRecord::ForgetStale() {
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    it = Made(it->first) ? std::next(it) : dirs_.erase(it);
  }
}

absl::Status CgroupRecord::Save() {
  const std::string file = absl::StrCat(root_, "/", kFileName);
  if (dirs_.empty()) {
    if (unlink(file.c_str()) != 0 && errno != ENOENT) return Errno("removing " + file);
    return absl::OkStatus();
  }
  json dirs = json::object();
  for (const auto& [path, ino] : dirs_) dirs[path] = static_cast<uint64_t>(ino);
  // Under the lock: one writer at a time, so the temporary name is fixed.
  const std::string tmp = file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Errno("writing " + tmp);
    out << json{{"dirs", dirs}}.dump(1) << "\n";
    out.flush();
    if (!out.good()) {
      const absl::Status s = Errno("writing " + tmp);
      unlink(tmp.c_str());
      return s;
    }
  }
  if (rename(tmp.c_str(), file.c_str()) != 0) {
    const absl::Status s = Errno("renaming " + tmp + " to " + file);
    unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::container
