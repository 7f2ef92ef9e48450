// fs.inotify.max_user_instances and max_user_watches: readable, written by
// root (the test writes back only the value already there: natively they
// are the host's), and an instance past a user's limit is EMFILE (counted
// per effective uid, root's too; a fresh uid here, so no other process
// shares its count). Watches stop at their limit with ENOSPC the same way
// (sentry/fs/inotify:inotify_limits_test; the host's limit is too large to
// reach here).
#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr char kInstances[] = "/proc/sys/fs/inotify/max_user_instances";
constexpr char kWatches[] = "/proc/sys/fs/inotify/max_user_watches";

long ReadLimit(const char* path) {
  std::string s = ReadFile(path);
  char* end = nullptr;
  long v = strtol(s.c_str(), &end, 10);
  return end != s.c_str() && *end == '\n' ? v : -1;
}

int WriteText(const char* path, const std::string& text) {
  FileDescriptor fd(open(path, O_WRONLY));
  if (fd.get() < 0) return errno;
  if (write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) return errno;
  return 0;
}

TEST(InotifyLimitsTest, ReadableAndWrittenByRoot) {
  for (const char* path : {kInstances, kWatches}) {
    const long v = ReadLimit(path);
    ASSERT_GT(v, 0) << path << ": " << ReadFile(path);
    EXPECT_EQ(WriteText(path, std::to_string(v) + "\n"), 0) << path;
    EXPECT_EQ(ReadLimit(path), v) << path;
    EXPECT_EQ(WriteText(path, "-1\n"), EINVAL) << path;  // proc_dointvec_minmax(): min 0
    EXPECT_EQ(WriteText(path, "many\n"), EINVAL) << path;
    EXPECT_EQ(ReadLimit(path), v) << path;
    const std::string p = path;
    EXPECT_EQ(RunAsNobody([&] {
                int fd = open(p.c_str(), O_WRONLY);
                return fd < 0 && errno == EACCES ? 0 : 1;
              }),
              0)
        << path;
  }
}

TEST(InotifyLimitsTest, InstancesStopAtTheUsersLimit) {
  const long limit = ReadLimit(kInstances);
  ASSERT_GT(limit, 0);
  if (limit > 4000) GTEST_SKIP() << "max_user_instances " << limit << " is too many to open";
  // A uid nothing else runs as.
  const uid_t uid = 40000 + getpid() % 20000;
  int status = RunInChild([&] {
    if (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) return 1;
    long n = 0;
    int first = -1;
    for (; n <= limit; ++n) {
      int fd = inotify_init1(IN_CLOEXEC);
      if (fd < 0) break;
      if (first < 0) first = fd;
    }
    if (n != limit) return 2;
    if (errno != EMFILE) return 3;
    // A watch still comes: the instances that exist keep working.
    if (inotify_add_watch(first, "/", IN_CREATE) < 0) return 4;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
