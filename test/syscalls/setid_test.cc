// The set*id rules of kernel/sys.c: which ids setreuid/setregid may set and
// how the saved id follows, setresuid's no-op case, setfsuid/setfsgid's
// return value and their refusal of an invalid or foreign id (credentials(7),
// setreuid(2), setfsuid(2)).
//
// Each test changes its ids in a child (RunInChild), with the raw syscalls:
// glibc's wrappers would apply the change to every thread, which is not what
// is being tested.
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/child_check.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr long kKeep = -1;

long Setreuid(long r, long e) { return syscall(SYS_setreuid, r, e); }
long Setregid(long r, long e) { return syscall(SYS_setregid, r, e); }
long Setresuid(long r, long e, long s) { return syscall(SYS_setresuid, r, e, s); }
long Setresgid(long r, long e, long s) { return syscall(SYS_setresgid, r, e, s); }
long Setfsuid(long id) { return syscall(SYS_setfsuid, id); }
long Setfsgid(long id) { return syscall(SYS_setfsgid, id); }

// The four ids of a "Uid:" or "Gid:" line of /proc/self/status, as
// "real effective saved fs".
std::string StatusIds(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream f(line.substr(key.size() + 1));
    std::string a, b, c, d;
    f >> a >> b >> c >> d;
    return a + " " + b + " " + c + " " + d;
  }
  return "none";
}

bool Uids(const std::string& want) { return StatusIds("Uid") == want; }
bool Gids(const std::string& want) { return StatusIds("Gid") == want; }

TEST(SetidTest, SetreuidSavedFollowsNewEffective) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     // The effective id set to other than the old real id:
                     // the saved id follows it.
                     CHILD_REQUIRE(Setreuid(kKeep, 65534) == 0);
                     CHILD_REQUIRE(Uids("0 65534 65534 65534"));
                     // Back to the real id: the saved id stays.
                     CHILD_REQUIRE(Setreuid(kKeep, 0) == 0);
                     CHILD_REQUIRE(Uids("0 0 65534 0"));
                     // The real id set: the saved id becomes the new effective id.
                     CHILD_REQUIRE(Setreuid(1000, kKeep) == 0);
                     CHILD_REQUIRE(Uids("1000 0 0 0"));
                     return 0;
                   }),
                   0);
}

TEST(SetidTest, SetreuidUnprivilegedChoices) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     CHILD_REQUIRE(Setresuid(1000, 1001, 1002) == 0);
                     // The real id may become the real or effective id only,
                     // not the saved one.
                     errno = 0;
                     CHILD_REQUIRE(Setreuid(1002, kKeep) == -1 && errno == EPERM);
                     errno = 0;
                     CHILD_REQUIRE(Setreuid(0, kKeep) == -1 && errno == EPERM);
                     errno = 0;
                     CHILD_REQUIRE(Setreuid(kKeep, 0) == -1 && errno == EPERM);
                     CHILD_REQUIRE(Uids("1000 1001 1002 1001"));
                     // The effective id may become the saved id; the saved
                     // id then follows (it differs from the old real id).
                     CHILD_REQUIRE(Setreuid(kKeep, 1002) == 0);
                     CHILD_REQUIRE(Uids("1000 1002 1002 1002"));
                     // 1001 is gone: no id holds it any more.
                     errno = 0;
                     CHILD_REQUIRE(Setreuid(kKeep, 1001) == -1 && errno == EPERM);
                     // The real id set to the effective one: the saved id
                     // becomes the effective id.
                     CHILD_REQUIRE(Setreuid(1002, 1000) == 0);
                     CHILD_REQUIRE(Uids("1002 1000 1000 1000"));
                     return 0;
                   }),
                   0);
}

TEST(SetidTest, SetregidSavedAndChoices) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     CHILD_REQUIRE(Setregid(kKeep, 2) == 0);
                     CHILD_REQUIRE(Gids("0 2 2 2"));
                     CHILD_REQUIRE(Setresgid(100, 101, 102) == 0);
                     CHILD_REQUIRE(Setresuid(1000, 1000, 1000) == 0);  // drops CAP_SETGID
                     errno = 0;
                     CHILD_REQUIRE(Setregid(102, kKeep) == -1 && errno == EPERM);
                     CHILD_REQUIRE(Setregid(kKeep, 102) == 0);
                     CHILD_REQUIRE(Gids("100 102 102 102"));
                     // The effective id back to the real id: the saved id stays.
                     CHILD_REQUIRE(Setregid(kKeep, 100) == 0);
                     CHILD_REQUIRE(Gids("100 100 102 100"));
                     CHILD_REQUIRE(Setregid(kKeep, 102) == 0);
                     CHILD_REQUIRE(Setregid(102, kKeep) == 0);
                     CHILD_REQUIRE(Gids("102 102 102 102"));
                     return 0;
                   }),
                   0);
}

TEST(SetidTest, SetfsuidReturnsOldAndIgnoresInvalid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     // (uid_t)-1 is invalid: nothing changes, the current
                     // fsuid comes back, every time.
                     CHILD_REQUIRE(Setfsuid(kKeep) == 0);
                     CHILD_REQUIRE(Setfsuid(kKeep) == 0);
                     CHILD_REQUIRE(Uids("0 0 0 0"));
                     CHILD_REQUIRE(Setfsuid(65534) == 0);
                     CHILD_REQUIRE(Setfsuid(kKeep) == 65534);
                     CHILD_REQUIRE(Uids("0 0 0 65534"));
                     CHILD_REQUIRE(Setfsuid(0) == 65534);
                     // Unprivileged: one of the four ids only.
                     CHILD_REQUIRE(Setresuid(1000, 1001, 1002) == 0);
                     CHILD_REQUIRE(Setfsuid(2000) == 1001);
                     CHILD_REQUIRE(Setfsuid(1002) == 1001);
                     CHILD_REQUIRE(Setfsuid(2000) == 1002);
                     CHILD_REQUIRE(Uids("1000 1001 1002 1002"));
                     return 0;
                   }),
                   0);
}

TEST(SetidTest, SetfsgidReturnsOldAndIgnoresInvalid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     CHILD_REQUIRE(Setfsgid(kKeep) == 0);
                     CHILD_REQUIRE(Setfsgid(kKeep) == 0);
                     CHILD_REQUIRE(Setfsgid(65534) == 0);
                     CHILD_REQUIRE(Setfsgid(kKeep) == 65534);
                     CHILD_REQUIRE(Gids("0 0 0 65534"));
                     CHILD_REQUIRE(Setresgid(100, 101, 102) == 0);
                     CHILD_REQUIRE(Setresuid(1000, 1000, 1000) == 0);  // drops CAP_SETGID
                     CHILD_REQUIRE(Setfsgid(500) == 101);
                     CHILD_REQUIRE(Setfsgid(100) == 101);
                     CHILD_REQUIRE(Gids("100 101 102 100"));
                     return 0;
                   }),
                   0);
}

// setresuid(2) that changes nothing (every id -1, or equal to the current
// one and the effective id equal to the fsuid) leaves the fsuid alone;
// otherwise the fsuid follows the effective id.
TEST(SetidTest, SetresuidNoOpKeepsFsuid) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     CHILD_REQUIRE(Setfsuid(1234) == 0);
                     CHILD_REQUIRE(Setresuid(kKeep, kKeep, kKeep) == 0);
                     CHILD_REQUIRE(Uids("0 0 0 1234"));
                     CHILD_REQUIRE(Setresuid(0, kKeep, 0) == 0);
                     CHILD_REQUIRE(Uids("0 0 0 1234"));
                     CHILD_REQUIRE(Setresuid(kKeep, 0, kKeep) == 0);
                     CHILD_REQUIRE(Uids("0 0 0 0"));
                     CHILD_REQUIRE(Setfsgid(1234) == 0);
                     CHILD_REQUIRE(Setresgid(kKeep, kKeep, kKeep) == 0);
                     CHILD_REQUIRE(Gids("0 0 0 1234"));
                     return 0;
                   }),
                   0);
}

}  // namespace
}  // namespace syscall_test
