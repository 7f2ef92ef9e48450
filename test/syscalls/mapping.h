// Mapping: an mmap(2) result that unmaps itself, for the memory tests.
//
//   Mapping m(mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), len);
//   ASSERT_TRUE(m.ok());
#ifndef SEEDVISOR_TEST_SYSCALLS_MAPPING_H_
#define SEEDVISOR_TEST_SYSCALLS_MAPPING_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

namespace syscall_test {

class Mapping {
 public:
  Mapping(void* addr, size_t len) : addr_(addr), len_(len) {}
  ~Mapping() {
    if (addr_ != MAP_FAILED) munmap(addr_, len_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  bool ok() const { return addr_ != MAP_FAILED; }
  char* ptr() const { return static_cast<char*>(addr_); }
  uintptr_t addr() const { return reinterpret_cast<uintptr_t>(addr_); }
  // For mremap: the mapping moved or changed size.
  void Reset(void* addr, size_t len) {
    addr_ = addr;
    len_ = len;
  }

 private:
  void* addr_;
  size_t len_;
};

}  // namespace syscall_test

#endif  // SEEDVISOR_TEST_SYSCALLS_MAPPING_H_
