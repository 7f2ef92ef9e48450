// Capabilities (capabilities(7)): capget/capset, prctl's bounding and
// ambient sets and no_new_privs, /proc/self/status, the setuid fixups, and
// the permission checks they grant (chown, kill, chroot, mknod, low ports).
//
// Every test works from the caller's own sets, so it passes as root whatever
// the host left in the bounding set (CI hosts often lack one or two).
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

struct Caps {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};

bool GetCaps(Caps* c) {
  __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  if (syscall(SYS_capget, &hdr, d) != 0) return false;
  c->effective = d[0].effective | (uint64_t{d[1].effective} << 32);
  c->permitted = d[0].permitted | (uint64_t{d[1].permitted} << 32);
  c->inheritable = d[0].inheritable | (uint64_t{d[1].inheritable} << 32);
  return true;
}

bool SetCaps(const Caps& c) {
  __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  for (int i = 0; i < 2; ++i) {
    d[i].effective = static_cast<uint32_t>(c.effective >> (32 * i));
    d[i].permitted = static_cast<uint32_t>(c.permitted >> (32 * i));
    d[i].inheritable = static_cast<uint32_t>(c.inheritable >> (32 * i));
  }
  return syscall(SYS_capset, &hdr, d) == 0;
}

constexpr uint64_t Bit(int cap) { return uint64_t{1} << cap; }

// The value of a "Name:\t..." line of /proc/self/status.
std::string StatusField(const std::string& name) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":\t", 0) == 0) return line.substr(name.size() + 2);
  }
  return "";
}

uint64_t StatusHex(const std::string& name) {
  return std::stoull(StatusField(name), nullptr, 16);
}

TEST(CapTest, CapgetMatchesProcStatus) {
  Caps c;
  ASSERT_TRUE(GetCaps(&c));
  EXPECT_EQ(StatusHex("CapEff"), c.effective);
  EXPECT_EQ(StatusHex("CapPrm"), c.permitted);
  EXPECT_EQ(StatusHex("CapInh"), c.inheritable);
  if (geteuid() == 0) {
    EXPECT_NE(c.effective & Bit(CAP_CHOWN), 0u);
  }
}

TEST(CapTest, BadVersionIsEinvalAndReportsV3) {
  __user_cap_header_struct hdr = {0x12345678, 0};
  __user_cap_data_struct d[2];
  EXPECT_ERRNO(EINVAL, syscall(SYS_capget, &hdr, d));
  EXPECT_EQ(hdr.version, static_cast<uint32_t>(_LINUX_CAPABILITY_VERSION_3));
}

TEST(CapTest, CapsetCanDropAndRestoreEffectiveButNotGrowPermitted) {
  if (geteuid() != 0) GTEST_SKIP() << "needs CAP_CHOWN";
  EXPECT_EXIT_CODE(RunInChild([] {
                     Caps c;
                     if (!GetCaps(&c)) return 1;
                     if (!(c.permitted & Bit(CAP_CHOWN))) return 0;  // nothing to test
                     Caps d = c;
                     d.effective &= ~Bit(CAP_CHOWN);
                     if (!SetCaps(d)) return 2;
                     int fd = open("/tmp", O_RDONLY | O_DIRECTORY);
                     if (fd < 0) return 3;
                     if (fchown(fd, 4321, -1) != -1 || errno != EPERM) return 4;
                     if (!SetCaps(c)) return 5;  // still permitted
                     d = c;
                     d.permitted &= ~Bit(CAP_CHOWN);
                     d.effective &= ~Bit(CAP_CHOWN);
                     if (!SetCaps(d)) return 6;
                     if (SetCaps(c) || errno != EPERM) return 7;  // gone for good
                     d.effective |= Bit(CAP_CHOWN);  // effective within permitted
                     if (SetCaps(d) || errno != EPERM) return 8;
                     return 0;
                   }),
                   0);
}

TEST(CapTest, BoundingSetDropAndRead) {
  if (geteuid() != 0) GTEST_SKIP() << "needs CAP_SETPCAP";
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (prctl(PR_CAPBSET_READ, CAP_LAST_CAP + 1) != -1 ||
                         errno != EINVAL)
                       return 1;
                     if (prctl(PR_CAPBSET_READ, CAP_MKNOD) != 1) return 0;
                     if (prctl(PR_CAPBSET_DROP, CAP_MKNOD) != 0) return 2;
                     if (prctl(PR_CAPBSET_READ, CAP_MKNOD) != 0) return 3;
                     if (StatusHex("CapBnd") & Bit(CAP_MKNOD)) return 4;
                     // Without CAP_SETPCAP nothing more can be dropped.
                     Caps c;
                     if (!GetCaps(&c)) return 5;
                     c.effective &= ~Bit(CAP_SETPCAP);
                     if (!SetCaps(c)) return 6;
                     if (prctl(PR_CAPBSET_DROP, CAP_KILL) != -1 || errno != EPERM)
                       return 7;
                     return 0;
                   }),
                   0);
}

TEST(CapTest, AmbientNeedsPermittedAndInheritable) {
  if (geteuid() != 0) GTEST_SKIP() << "needs capabilities";
  EXPECT_EXIT_CODE(
      RunInChild([] {
        Caps c;
        if (!GetCaps(&c)) return 1;
        if (!(c.permitted & Bit(CAP_KILL))) return 0;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0) != -1 ||
            errno != EPERM)
          return 2;  // not inheritable yet
        c.inheritable |= Bit(CAP_KILL);
        if (!SetCaps(c)) return 3;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0) != 0) return 4;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0) != 1) return 5;
        if (StatusHex("CapAmb") != Bit(CAP_KILL)) return 6;
        // Dropping it from inheritable drops it from ambient too.
        c.inheritable &= ~Bit(CAP_KILL);
        if (!SetCaps(c)) return 7;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0) != 0) return 8;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return 9;
        return 0;
      }),
      0);
}

// PR_SET_SECUREBITS (LTP's prctl02, prctl07): CAP_SETPCAP, known bits only,
// a locked bit stays as it is and a lock stays; NO_CAP_AMBIENT_RAISE stops
// ambient raises and KEEP_CAPS_LOCKED stops PR_SET_KEEPCAPS.
TEST(CapTest, SecurebitsLocksAndNoAmbientRaise) {
  if (geteuid() != 0) GTEST_SKIP() << "needs capabilities";
  constexpr unsigned long kKeepCapsLocked = 1 << 5;
  constexpr unsigned long kNoAmbientRaise = 1 << 6, kNoAmbientRaiseLocked = 1 << 7;
  EXPECT_EXIT_CODE(
      RunInChild([] {
        Caps c;
        if (!GetCaps(&c)) return 1;
        if (!(c.permitted & Bit(CAP_SETPCAP)) || !(c.permitted & Bit(CAP_KILL))) return 0;
        if (prctl(PR_SET_SECUREBITS, 1UL << 20, 0, 0, 0) != -1 || errno != EPERM) return 2;
        if (prctl(PR_SET_SECUREBITS, kNoAmbientRaise | kNoAmbientRaiseLocked, 0, 0, 0) != 0) {
          return 3;
        }
        if (prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) !=
            static_cast<int>(kNoAmbientRaise | kNoAmbientRaiseLocked)) {
          return 4;
        }
        c.inheritable |= Bit(CAP_KILL);
        if (!SetCaps(c)) return 5;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0) != -1 || errno != EPERM) {
          return 6;
        }
        // The locked bit cannot be cleared, nor its lock dropped.
        if (prctl(PR_SET_SECUREBITS, kNoAmbientRaiseLocked, 0, 0, 0) != -1 || errno != EPERM) {
          return 7;
        }
        if (prctl(PR_SET_SECUREBITS, kNoAmbientRaise, 0, 0, 0) != -1 || errno != EPERM) return 8;
        // Other bits still change; a locked KEEP_CAPS stops PR_SET_KEEPCAPS.
        if (prctl(PR_SET_SECUREBITS, kNoAmbientRaise | kNoAmbientRaiseLocked | kKeepCapsLocked, 0,
                  0, 0) != 0) {
          return 9;
        }
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != -1 || errno != EPERM) return 10;
        // Without CAP_SETPCAP nothing changes.
        c.effective &= ~Bit(CAP_SETPCAP);
        if (!SetCaps(c)) return 11;
        if (prctl(PR_SET_SECUREBITS, kNoAmbientRaise | kNoAmbientRaiseLocked | kKeepCapsLocked, 0,
                  0, 0) != -1 ||
            errno != EPERM) {
          return 12;
        }
        return 0;
      }),
      0);
}

TEST(CapTest, NoNewPrivsIsSetOnceAndShown) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 0) return 1;
                     if (StatusField("NoNewPrivs") != "0") return 2;
                     if (prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0) != -1 || errno != EINVAL)
                       return 3;
                     if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 4;
                     if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) return 5;
                     if (StatusField("NoNewPrivs") != "1") return 6;
                     pid_t p = fork();
                     if (p == 0) _exit(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ? 0 : 1);
                     int st;
                     if (waitpid(p, &st, 0) != p || st != 0) return 7;
                     return 0;
                   }),
                   0);
}

TEST(CapTest, LeavingRootClearsCapsUnlessKeepCaps) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     Caps before;
                     if (!GetCaps(&before)) return 1;
                     if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return 2;
                     if (prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) != 1) return 3;
                     if (setresuid(1000, 1000, 1000) != 0) return 4;
                     Caps c;
                     if (!GetCaps(&c)) return 5;
                     if (c.permitted != before.permitted || c.effective != 0) return 6;
                     return 0;
                   }),
                   0);
  EXPECT_EXIT_CODE(RunInChild([] {
                     // seteuid away and back: effective leaves and returns.
                     if (setresuid(-1, 1000, -1) != 0) return 1;
                     Caps c;
                     if (!GetCaps(&c)) return 2;
                     if (c.effective != 0 || c.permitted == 0) return 3;
                     if (setresuid(-1, 0, -1) != 0) return 4;
                     if (!GetCaps(&c)) return 5;
                     if (c.effective != c.permitted) return 6;
                     // For good: no capabilities at all.
                     if (setresuid(1000, 1000, 1000) != 0) return 7;
                     if (!GetCaps(&c)) return 8;
                     if (c.effective != 0 || c.permitted != 0) return 9;
                     return 0;
                   }),
                   0);
}

TEST(CapTest, KillOtherUidNeedsCapKill) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     pid_t victim = fork();
                     if (victim == 0) {
                       if (setresuid(2000, 2000, 2000) != 0) _exit(1);
                       pause();
                       _exit(0);
                     }
                     usleep(100000);
                     int r = 0;
                     pid_t k = fork();
                     if (k == 0) {
                       if (setresuid(1000, 1000, 1000) != 0) _exit(1);
                       if (kill(victim, 0) != -1 || errno != EPERM) _exit(2);
                       if (kill(victim, SIGKILL) != -1 || errno != EPERM) _exit(3);
                       _exit(0);
                     }
                     int st;
                     waitpid(k, &st, 0);
                     if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) r = 10 + WEXITSTATUS(st);
                     if (kill(victim, SIGKILL) != 0) r = 20;  // root has CAP_KILL
                     waitpid(victim, &st, 0);
                     return r;
                   }),
                   0);
}

TEST(CapTest, ChrootAndMknodNeedTheirCaps) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     Caps c;
                     if (!GetCaps(&c)) return 1;
                     c.effective &= ~(Bit(CAP_SYS_CHROOT) | Bit(CAP_MKNOD));
                     if (!SetCaps(c)) return 2;
                     if (chroot("/") != -1 || errno != EPERM) return 3;
                     if (mknod("/tmp/cap_test_null", S_IFCHR | 0600, makedev(1, 3)) != -1 ||
                         errno != EPERM)
                       return 4;
                     return 0;
                   }),
                   0);
}

TEST(CapTest, LowPortsNeedCapNetBindService) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  EXPECT_EXIT_CODE(RunInChild([] {
                     Caps c;
                     if (!GetCaps(&c) || !(c.effective & Bit(CAP_NET_BIND_SERVICE))) return 0;
                     c.effective &= ~Bit(CAP_NET_BIND_SERVICE);
                     if (!SetCaps(c)) return 1;
                     int s = socket(AF_INET, SOCK_STREAM, 0);
                     if (s < 0) return 2;
                     sockaddr_in a = {};
                     a.sin_family = AF_INET;
                     a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                     a.sin_port = htons(1000);
                     if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != -1 ||
                         errno != EACCES)
                       return 3;
                     a.sin_port = 0;  // any free port: always allowed
                     if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 4;
                     return 0;
                   }),
                   0);
}

TEST(CapTest, ChrootConfinesPathsAndGetcwd) {
  if (geteuid() != 0) GTEST_SKIP() << "needs CAP_SYS_CHROOT";
  const TempDir tmp;  // the parent's: it goes once the child is done
  const std::string dir = tmp.path();
  EXPECT_EXIT_CODE(RunInChild([&dir] {
                     Caps c;
                     if (!GetCaps(&c) || !(c.effective & Bit(CAP_SYS_CHROOT))) return 0;
                     std::string sub = dir + "/sub";
                     if (mkdir(sub.c_str(), 0755) != 0) return 2;
                     if (chdir("/") != 0) return 3;
                     if (chroot(dir.c_str()) != 0) return 4;
                     // The old cwd is outside the new root.
                     char buf[256];
                     if (syscall(SYS_getcwd, buf, sizeof(buf)) < 0) return 5;
                     if (std::string(buf) != "(unreachable)/") return 6;
                     if (chdir("/sub") != 0) return 7;
                     if (!getcwd(buf, sizeof(buf)) || std::string(buf) != "/sub") return 8;
                     if (chdir("../../..") != 0) return 9;  // ".." stops at the root
                     if (access("sub", F_OK) != 0) return 10;
                     return 0;
                   }),
                   0);
}

}  // namespace
}  // namespace syscall_test
