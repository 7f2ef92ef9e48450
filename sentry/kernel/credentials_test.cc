#include "sentry/kernel/credentials.h"

#include <errno.h>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

constexpr uint64_t kDefaultOci =
    CapBit(CAP_AUDIT_WRITE) | CapBit(CAP_KILL) | CapBit(CAP_NET_BIND_SERVICE);

TEST(Credentials, RootHasEveryCapabilityOthersNone) {
  Credentials root;
  EXPECT_TRUE(root.HasCap(CAP_CHOWN));
  EXPECT_TRUE(root.HasCap(kLastCap));
  Credentials u = Credentials::ForUser(1000, 100);
  EXPECT_FALSE(u.HasCap(CAP_CHOWN));
  EXPECT_EQ(u.cap_permitted, 0u);
  EXPECT_EQ(u.cap_bounding, kAllCaps);
  EXPECT_EQ(u.fsgid, 100u);
}

TEST(Credentials, SetCapsKeepsAmbientWithinPermittedAndInheritable) {
  Credentials c;
  // runc's default spec: no inheritable set, so the ambient raise fails.
  c.SetCaps(kDefaultOci, kDefaultOci, 0, kDefaultOci, kDefaultOci);
  EXPECT_EQ(c.cap_ambient, 0u);
  EXPECT_EQ(c.cap_effective, kDefaultOci);
  c.SetCaps(kDefaultOci, kAllCaps, kDefaultOci, kDefaultOci, CapBit(CAP_KILL));
  EXPECT_EQ(c.cap_ambient, CapBit(CAP_KILL));
  EXPECT_EQ(c.cap_effective, kDefaultOci);  // effective within permitted
}

TEST(Credentials, RootExecGetsBoundingAndNonRootOnlyAmbient) {
  Credentials c;
  c.SetCaps(kDefaultOci, kDefaultOci, 0, kDefaultOci, 0);
  c.OnExec();
  EXPECT_EQ(c.cap_permitted, kDefaultOci);
  EXPECT_EQ(c.cap_effective, kDefaultOci);

  Credentials u = Credentials::ForUser(1000, 100);
  u.SetCaps(kAllCaps, kDefaultOci, kDefaultOci, kDefaultOci, CapBit(CAP_KILL));
  u.OnExec();
  EXPECT_EQ(u.cap_permitted, CapBit(CAP_KILL));
  EXPECT_EQ(u.cap_effective, CapBit(CAP_KILL));
  EXPECT_EQ(u.cap_inheritable, kDefaultOci);
}

TEST(Credentials, NoNewPrivsExecGainsNothing) {
  Credentials c;
  c.SetCaps(kAllCaps, CapBit(CAP_KILL), 0, CapBit(CAP_KILL), 0);
  c.no_new_privs = true;
  c.OnExec();  // root would get the whole bounding set
  EXPECT_EQ(c.cap_permitted, CapBit(CAP_KILL));
  c.no_new_privs = false;
  c.OnExec();
  EXPECT_EQ(c.cap_permitted, kAllCaps);
}

TEST(Credentials, LeavingRootDropsCapsUnlessKeepCaps) {
  Credentials c;
  c.ruid = c.euid = c.suid = 1000;
  c.FixupAfterSetuid(0, 0, 0);
  EXPECT_EQ(c.cap_permitted, 0u);
  EXPECT_EQ(c.cap_effective, 0u);

  Credentials k;
  k.securebits = kSecbitKeepCaps;
  k.ruid = k.euid = k.suid = 1000;
  k.FixupAfterSetuid(0, 0, 0);
  EXPECT_EQ(k.cap_permitted, kAllCaps);
  EXPECT_EQ(k.cap_effective, 0u);  // euid 0 -> 1000 always clears effective

  // seteuid(1000) and back: effective goes and comes back from permitted.
  Credentials e;
  e.euid = 1000;
  e.FixupAfterSetuid(0, 0, 0);
  EXPECT_EQ(e.cap_permitted, kAllCaps);
  EXPECT_EQ(e.cap_effective, 0u);
  e.euid = 0;
  e.FixupAfterSetuid(0, 1000, 0);
  EXPECT_EQ(e.cap_effective, kAllCaps);
}

TEST(Credentials, SetfsuidMovesOnlyFilesystemCaps) {
  Credentials c;
  c.fsuid = 1000;
  c.FixupAfterSetfsuid(0);
  EXPECT_FALSE(c.HasCap(CAP_CHOWN));
  EXPECT_FALSE(c.HasCap(CAP_DAC_OVERRIDE));
  EXPECT_TRUE(c.HasCap(CAP_KILL));
  c.fsuid = 0;
  c.FixupAfterSetfsuid(1000);
  EXPECT_TRUE(c.HasCap(CAP_CHOWN));
}

TEST(Credentials, CapsetCanOnlyDrop) {
  Credentials c;
  c.SetCaps(kAllCaps, kDefaultOci, 0, kDefaultOci, 0);
  EXPECT_EQ(c.Capset(CapBit(CAP_KILL), kDefaultOci, 0), 0);
  EXPECT_EQ(c.cap_effective, CapBit(CAP_KILL));
  // Raising effective back within permitted is fine; permitted cannot grow.
  EXPECT_EQ(c.Capset(kDefaultOci, kDefaultOci, 0), 0);
  EXPECT_EQ(c.Capset(kDefaultOci, kDefaultOci | CapBit(CAP_CHOWN), 0), EPERM);
  // Effective outside the new permitted set.
  EXPECT_EQ(c.Capset(kDefaultOci, CapBit(CAP_KILL), 0), EPERM);
  // Inheritable: within inheritable | permitted without CAP_SETPCAP.
  EXPECT_EQ(c.Capset(kDefaultOci, kDefaultOci, CapBit(CAP_CHOWN)), EPERM);
  EXPECT_EQ(c.Capset(kDefaultOci, kDefaultOci, CapBit(CAP_KILL)), 0);
  EXPECT_EQ(c.cap_inheritable, CapBit(CAP_KILL));
}

}  // namespace
}  // namespace seedvisor::sentry
