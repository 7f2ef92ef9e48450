#include "seccomp/stub_program.h"

#include <linux/seccomp.h>
#include <stddef.h>

#include <iterator>

#include "seccomp/compiled_programs.h"

namespace seedvisor::seccomp {

// The instruction-pointer test is built here by hand: libseccomp's rules
// compare only the syscall number and its arguments, never
// seccomp_data.instruction_pointer, so it cannot say "trap every call made
// outside the stub's text". The test runs before libseccomp's own
// architecture check; both send what they catch to SECCOMP_RET_TRAP, so
// their order decides nothing.
std::vector<sock_filter> StubProgram(uint64_t text_begin, uint64_t text_end) {
  constexpr uint32_t kIpOff = offsetof(seccomp_data, instruction_pointer);
  const uint32_t hi = static_cast<uint32_t>(text_begin >> 32);
  const uint32_t lo_begin = static_cast<uint32_t>(text_begin);
  const uint32_t lo_last = static_cast<uint32_t>(text_end - 1);
  std::vector<sock_filter> out = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kIpOff + 4),  // little-endian: high word
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, hi, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kIpOff),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, lo_begin, 0, 1),  // below: trap
      BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, lo_last, 0, 1),   // above: trap
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
  };
  out.insert(out.end(), std::begin(compiled::kStubRules), std::end(compiled::kStubRules));
  return out;
}

}  // namespace seedvisor::seccomp
