// Names made and removed while other threads look them up: once unlink(2)
// or rmdir(2) returned, the name is gone for every lookup (no lookup that
// raced with the removal keeps finding the old object), and a create of
// the name right after succeeds, O_EXCL and mkdir(2) included.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr int kReaders = 3;
constexpr int kMaxRounds = 3000;
constexpr int64_t kMaxMs = 1500;  // per case: the sandbox's ptrace is slow

// Runs `round` until it fails, kMaxRounds or kMaxMs, while kReaders threads
// look `path` up (stat and open) as fast as they can.
void WithReaders(const std::string& path, const std::function<bool(std::string&)>& round) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        struct stat st;
        (void)stat(path.c_str(), &st);
        int fd = open(path.c_str(), O_RDONLY);
        if (fd >= 0) close(fd);
      }
    });
  }
  std::string why;
  int rounds = 0;
  const int64_t end = NowMs() + kMaxMs;
  while (rounds < kMaxRounds && NowMs() < end) {
    ++rounds;
    if (!round(why)) break;
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(why, "") << "round " << rounds;
}

std::string Err(const char* what) { return std::string(what) + ": " + ErrnoName(errno); }

bool Fail(std::string& why, std::string what) {
  why = std::move(what);
  return false;
}

TEST(NameRaceTest, AnUnlinkedFileIsGoneForEveryLookup) {
  TempDir dir;
  const std::string f = dir.Path("f");
  WithReaders(f, [&](std::string& why) {
    int fd = open(f.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return Fail(why, Err("open O_CREAT|O_EXCL"));
    close(fd);
    if (unlink(f.c_str()) != 0) return Fail(why, Err("unlink"));
    struct stat st;
    if (stat(f.c_str(), &st) == 0) return Fail(why, "stat after unlink succeeded");
    if (errno != ENOENT) return Fail(why, Err("stat after unlink"));
    fd = open(f.c_str(), O_RDONLY);
    if (fd >= 0) {
      close(fd);
      return Fail(why, "open after unlink succeeded");
    }
    return true;
  });
}

TEST(NameRaceTest, ARemovedDirectoryIsGoneForEveryLookup) {
  TempDir dir;
  const std::string d = dir.Path("d");
  WithReaders(d, [&](std::string& why) {
    if (mkdir(d.c_str(), 0755) != 0) return Fail(why, Err("mkdir"));
    if (rmdir(d.c_str()) != 0) return Fail(why, Err("rmdir"));
    struct stat st;
    if (stat(d.c_str(), &st) == 0) return Fail(why, "stat after rmdir succeeded");
    if (errno != ENOENT) return Fail(why, Err("stat after rmdir"));
    return true;
  });
}

// A rename's old name is gone, its new one names the moved file.
TEST(NameRaceTest, ARenamedFileIsFoundOnlyByItsNewName) {
  TempDir dir;
  const std::string a = dir.Path("a"), b = dir.Path("b");
  WithReaders(a, [&](std::string& why) {
    if (!WriteFile(a, "x")) return Fail(why, Err("create"));
    struct stat made;
    if (stat(a.c_str(), &made) != 0) return Fail(why, Err("stat"));
    if (rename(a.c_str(), b.c_str()) != 0) return Fail(why, Err("rename"));
    struct stat st;
    if (stat(a.c_str(), &st) == 0) return Fail(why, "stat of the old name succeeded");
    if (stat(b.c_str(), &st) != 0) return Fail(why, Err("stat of the new name"));
    if (st.st_ino != made.st_ino) return Fail(why, "the new name is another file");
    if (unlink(b.c_str()) != 0) return Fail(why, Err("unlink"));
    return true;
  });
}

}  // namespace
}  // namespace syscall_test
