#include "sentry/fs/proc/meminfo.h"

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

TEST(MeminfoText, EmptiesTheHugetlbPoolOnly) {
  const std::string host =
      "MemTotal:       16384000 kB\n"
      "AnonHugePages:     40960 kB\n"
      "HugePages_Total:      64\n"
      "HugePages_Free:       12\n"
      "HugePages_Rsvd:        3\n"
      "HugePages_Surp:        0\n"
      "Hugepagesize:       2048 kB\n"
      "Hugetlb:          131072 kB\n";
  EXPECT_EQ(MeminfoText(host),
            "MemTotal:       16384000 kB\n"
            "AnonHugePages:     40960 kB\n"
            "HugePages_Total:       0\n"
            "HugePages_Free:        0\n"
            "HugePages_Rsvd:        0\n"
            "HugePages_Surp:        0\n"
            "Hugepagesize:       2048 kB\n"
            "Hugetlb:               0 kB\n");
}

TEST(MeminfoText, KeepsAMissingFinalNewline) {
  EXPECT_EQ(MeminfoText("HugePages_Free: 7"), "HugePages_Free: 0");
  EXPECT_EQ(MeminfoText(""), "");
}

}  // namespace
}  // namespace seedvisor::sentry
