// nsfs inode numbers of namespaces made in the sandbox: one counter for
// every namespace type, from the dynamic range Linux's nsfs numbers come
// from (PROC_DYNAMIC_FIRST), so that no two namespaces share one.
#ifndef SEEDVISOR_SENTRY_KERNEL_NS_INO_H_
#define SEEDVISOR_SENTRY_KERNEL_NS_INO_H_

#include <atomic>
#include <cstdint>

namespace seedvisor::sentry {

inline uint64_t NextNsIno() {
  static std::atomic<uint64_t> next_ino{0xF0000000};
  return next_ino.fetch_add(1);
}

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_NS_INO_H_
