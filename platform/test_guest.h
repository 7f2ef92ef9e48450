// For the platform tests (platform_test.cc, kvm/kvm_vcpus_test.cc): a
// platform, one address space with guest code mapped read+exec at a page
// of its own, and a context attached to the space's initial thread.
//
//   TestGuest g;
//   ASSERT_NO_FATAL_FAILURE(MakeTestGuest("systrap", kCode, kProgram, sizeof(kProgram), &g));
//   Stop s = g.ctx->Run(regs);
#ifndef SEEDVISOR_PLATFORM_TEST_GUEST_H_
#define SEEDVISOR_PLATFORM_TEST_GUEST_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "gtest/gtest.h"
#include "platform/platform.h"

namespace seedvisor::platform {

struct TestGuest {
  std::unique_ptr<Platform> platform;
  std::shared_ptr<AddressSpace> as;
  std::unique_ptr<Context> ctx;
};

// Fails the test (fatally) if any step fails. `len` fits a page.
inline void MakeTestGuest(std::string_view platform, uint64_t code_at, const void* code, size_t len,
                          TestGuest* out) {
  ASSERT_LE(len, kPageSize);
  absl::StatusOr<std::unique_ptr<Platform>> p = NewPlatform(platform);
  ASSERT_TRUE(p.ok()) << p.status();
  out->platform = std::move(*p);
  absl::StatusOr<std::shared_ptr<AddressSpace>> as = out->platform->NewAddressSpace();
  ASSERT_TRUE(as.ok()) << as.status();
  out->as = *as;
  absl::StatusOr<std::unique_ptr<Context>> ctx =
      out->platform->Attach(out->as, out->as->initial_thread());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  out->ctx = std::move(*ctx);
  ASSERT_TRUE(out->as->Map(UserAddr(code_at), kPageSize, PROT_READ | PROT_EXEC,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                  .ok());
  ASSERT_TRUE(out->as->WriteForce(UserAddr(code_at), code, len).ok());
}

}  // namespace seedvisor::platform

#endif  // SEEDVISOR_PLATFORM_TEST_GUEST_H_
