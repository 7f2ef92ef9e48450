// Typed guest addresses.
//
// Guest memory is never touched through a host pointer: a guest address is a
// `UserAddr`, and bytes move only through an address space's CopyIn/CopyOut.
#ifndef SEEDVISOR_SENTRY_BASE_USERMEM_H_
#define SEEDVISOR_SENTRY_BASE_USERMEM_H_

#include <compare>
#include <cstdint>

namespace seedvisor {

inline constexpr uint64_t kPageSize = 4096;

constexpr uint64_t PageRoundDown(uint64_t v) { return v & ~(kPageSize - 1); }
constexpr uint64_t PageRoundUp(uint64_t v) { return (v + kPageSize - 1) & ~(kPageSize - 1); }

class UserAddr {
 public:
  constexpr UserAddr() = default;
  constexpr explicit UserAddr(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr bool IsNull() const { return v_ == 0; }
  constexpr UserAddr operator+(uint64_t off) const { return UserAddr(v_ + off); }
  constexpr UserAddr operator-(uint64_t off) const { return UserAddr(v_ - off); }
  constexpr auto operator<=>(const UserAddr&) const = default;

 private:
  uint64_t v_ = 0;
};

// A guest-memory range [addr, addr+len).
struct UserSpan {
  UserAddr addr;
  uint64_t len = 0;
};

}  // namespace seedvisor

#endif  // SEEDVISOR_SENTRY_BASE_USERMEM_H_
