#include "sentry/mm/mm.h"

#include <cerrno>
#include <memory>
#include <new>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

// An address space that holds nothing: MM needs one to be made.
class NoAddressSpace : public platform::AddressSpace {
 public:
  Status Map(UserAddr, uint64_t, int, int, int, uint64_t) override { return {}; }
  Status Unmap(UserAddr, uint64_t) override { return {}; }
  Status Protect(UserAddr, uint64_t, int) override { return {}; }
  Status Advise(UserAddr, uint64_t, int) override { return {}; }
  Status Sync(UserAddr, uint64_t, int) override { return {}; }
  Status Remap(UserAddr, uint64_t, UserAddr, uint64_t) override { return {}; }
  Result<size_t> Read(UserAddr, void*, size_t) override { return Errno(EFAULT); }
  Result<size_t> Write(UserAddr, const void*, size_t) override { return Errno(EFAULT); }
  Status WriteForce(UserAddr, const void*, size_t) override { return Errno(EFAULT); }
  UserAddr UserTop() const override { return UserAddr(uint64_t{1} << 46); }
  UserAddr VdsoBase() const override { return UserAddr(); }
  int host_pid() const override { return -1; }
  platform::ThreadHandle initial_thread() const override { return {}; }
  int64_t CpuTimeNs() const override { return 0; }
  int64_t MaxRssKb() const override { return 0; }
};

// What outlives an MM names it by id (sentry/sfork's learned pages): an MM
// made where a dead one was must not be taken for it.
TEST(MmTest, AnMmMadeWhereADeadOneWasHasAnotherId) {
  auto as = std::make_shared<NoAddressSpace>();
  alignas(MM) unsigned char at[sizeof(MM)];
  MM* first = new (at) MM(as);
  const uint64_t id = first->id();
  first->~MM();
  MM* second = new (at) MM(as);
  EXPECT_EQ(static_cast<void*>(second), static_cast<void*>(first));
  EXPECT_NE(second->id(), id);
  MM other(as);
  EXPECT_NE(other.id(), second->id());
  EXPECT_NE(other.id(), id);
  second->~MM();
}

}  // namespace
}  // namespace seedvisor::sentry
