// The systrap stub's seccomp program for one stub text page: a syscall made
// outside [text_begin, text_end) traps to the stub's SIGSYS handler (it is
// the guest's); one made from the stub's text is decided by StubPolicy()'s
// rules, compiled at build time with libseccomp. Building it only copies
// instructions (no compiler runs): the platform builds it once at start.
//
//   std::vector<sock_filter> prog = seccomp::StubProgram(text, text + 0x1000);
#ifndef SEEDVISOR_SECCOMP_STUB_PROGRAM_H_
#define SEEDVISOR_SECCOMP_STUB_PROGRAM_H_

#include <linux/filter.h>

#include <cstdint>
#include <vector>

namespace seedvisor::seccomp {

// text_begin < text_end, both in one 4 GiB window (the same high 32 bits).
std::vector<sock_filter> StubProgram(uint64_t text_begin, uint64_t text_end);

}  // namespace seedvisor::seccomp

#endif  // SEEDVISOR_SECCOMP_STUB_PROGRAM_H_
