#include "platform/kvm/kvm_host_maps.h"

#include <sys/mman.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace seedvisor::platform::kvm {
namespace {

TEST(ParseMapsLine, FileAnonymousSharedAndNone) {
  auto f = ParseMapsLine("7f0000001000-7f0000003000 r-xp 00002000 08:01 1234   /usr/lib/libc.so.6\n");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->start, 0x7f0000001000u);
  EXPECT_EQ(f->end, 0x7f0000003000u);
  EXPECT_EQ(f->prot, PROT_READ | PROT_EXEC);
  EXPECT_TRUE(f->backed);

  auto anon = ParseMapsLine("10000-11000 rw-p 00000000 00:00 0 \n");
  ASSERT_TRUE(anon.has_value());
  EXPECT_EQ(anon->prot, PROT_READ | PROT_WRITE);
  EXPECT_FALSE(anon->backed);

  // Shared anonymous memory is a shmem object: an inode.
  auto shm = ParseMapsLine("20000-22000 rw-s 00000000 00:01 5678   /dev/zero (deleted)\n");
  ASSERT_TRUE(shm.has_value());
  EXPECT_TRUE(shm->backed);

  auto none = ParseMapsLine("30000-31000 ---p 00000000 00:00 0");
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->prot, PROT_NONE);

  EXPECT_FALSE(ParseMapsLine("not a maps line").has_value());
}

TEST(HostVmas, FindsOurOwnMapping) {
  const long page = sysconf(_SC_PAGESIZE);
  void* p = mmap(nullptr, 2 * page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  const auto addr = reinterpret_cast<uint64_t>(p);
  auto v = FindHostVma(getpid(), addr + page);
  ASSERT_TRUE(v.has_value());
  EXPECT_LE(v->start, addr);
  EXPECT_GE(v->end, addr + 2 * page);
  EXPECT_EQ(v->prot, PROT_READ);
  for (const HostVma& h : HostVmas(getpid(), addr)) EXPECT_LE(h.end, addr);
  munmap(p, 2 * page);
}

}  // namespace
}  // namespace seedvisor::platform::kvm
