#include "test/util/temp_dir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <utility>

#include "gtest/gtest.h"

namespace seedvisor::testutil {

namespace {

// nftw callback: removes one entry. A directory a test made read-only or
// unsearchable is made writable first, so that removal also works for a
// non-root user.
int RemoveOne(const char* path, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_DNR) chmod(path, 0700);
  if (remove(path) != 0 && S_ISDIR(st->st_mode)) {
    chmod(path, 0700);
    remove(path);
  }
  return 0;
}

}  // namespace

std::string TestTmpRoot() {
  const char* dir = getenv("TEST_TMPDIR");
  if (dir != nullptr && dir[0] != '\0') return dir;
  return "/tmp";
}

ScopedTempDir::ScopedTempDir(std::string_view prefix) : ScopedTempDir(TestTmpRoot(), prefix) {}

ScopedTempDir::ScopedTempDir(std::string_view base, std::string_view prefix) {
  std::string tmpl = std::string(base) + "/" + std::string(prefix) + ".XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    // A test without its directory would only fail later and less clearly.
    ADD_FAILURE() << "mkdtemp(" << tmpl << "): " << strerror(errno);
    abort();
  }
  path_ = std::move(tmpl);
}

ScopedTempDir ScopedTempDir::Short(std::string_view prefix) { return ScopedTempDir("/tmp", prefix); }

ScopedTempDir::~ScopedTempDir() { Remove(); }

ScopedTempDir::ScopedTempDir(ScopedTempDir&& other) noexcept
    : path_(std::exchange(other.path_, std::string())), next_name_(other.next_name_) {}

ScopedTempDir& ScopedTempDir::operator=(ScopedTempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, std::string());
    next_name_ = other.next_name_;
  }
  return *this;
}

std::string ScopedTempDir::Path(std::string_view name) const { return path_ + "/" + std::string(name); }

std::string ScopedTempDir::NewPath(std::string_view stem) {
  return Path(std::string(stem) + std::to_string(next_name_++));
}

void ScopedTempDir::Remove() {
  if (path_.empty()) return;
  // FTW_DEPTH: children before their directory; FTW_PHYS: never follow a
  // symlink a test made out of the directory.
  nftw(path_.c_str(), RemoveOne, 16, FTW_DEPTH | FTW_PHYS);
  path_.clear();
}

}  // namespace seedvisor::testutil
