// Seccomp policies as tables, and the classic-BPF tools around the programs
// they compile to: a policy is a table of rules, compiled with libseccomp
// (compile.h, at build time) into the program the kernel runs on every host
// syscall; Check() and Evaluate() run programs, ours and the guest's.
//
// Policies are data (CONVENTIONS.md "Policies are data"): each rule names a
// syscall, optional argument matchers and the reason someone needs it. Rules
// are tried in order; the first whose syscall number and matchers all match
// decides. Example:
//
//   Policy p{.name = "demo", .default_action = ActErrno(EPERM)};
//   p.rules = {
//       {SYS_read, {}, SECCOMP_RET_ALLOW, "reading pipes"},
//       {SYS_fcntl, {ArgEq(1, F_GETFL)}, SECCOMP_RET_ALLOW, "mode of an fd"},
//   };
//   absl::StatusOr<std::vector<sock_filter>> prog = Compile(p);  // compile.h
//   Install(*prog, /*tsync=*/true);
#ifndef SEEDVISOR_SECCOMP_BPF_H_
#define SEEDVISOR_SECCOMP_BPF_H_

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace seedvisor::seccomp {

// (args[index] & mask) == value, on the full 64 bits.
struct ArgMatch {
  int index = 0;
  uint64_t mask = ~uint64_t{0};
  uint64_t value = 0;
};

inline ArgMatch ArgEq(int index, uint64_t value) { return {index, ~uint64_t{0}, value}; }
// The bits of `mask` in args[index] equal those of `value`.
inline ArgMatch ArgMasked(int index, uint64_t mask, uint64_t value) {
  return {index, mask, value};
}
// No bit outside `allowed` is set in the low 32 bits of args[index] (the high
// half is ignored, as the kernel ignores it for int arguments).
inline ArgMatch ArgFlagsIn(int index, uint32_t allowed) {
  return {index, static_cast<uint32_t>(~allowed), 0};
}

inline constexpr uint32_t ActErrno(int err) {
  return SECCOMP_RET_ERRNO | (static_cast<uint32_t>(err) & SECCOMP_RET_DATA);
}

struct Rule {
  int nr = 0;
  std::vector<ArgMatch> args;  // all must match
  uint32_t action = SECCOMP_RET_ALLOW;
  const char* why = "";
};

struct Policy {
  std::string name;
  std::vector<Rule> rules;
  uint32_t default_action = ActErrno(1);  // EPERM
  // Syscalls of another ABI (i386 int 0x80, x32; and -1, which has the x32
  // bit set) get this action.
  uint32_t foreign_abi_action = SECCOMP_RET_KILL_PROCESS;
};

// Linux's rules for a seccomp program (bpf_check_classic() and
// seccomp_check_filter()): 1..BPF_MAXINSNS instructions, only the opcodes
// seccomp allows, loads from struct seccomp_data at aligned offsets, jumps
// forward and inside the program, no scratch word read before it is written,
// a RET at the end. Returns 0 or EINVAL.
int Check(const sock_filter* prog, size_t len);
int Check(const std::vector<sock_filter>& prog);

// The action `prog` takes for `data` (bpf_eval.cc): the sentry runs a
// guest's filters with it on every syscall, and tests run our own policies.
// At most `len` instructions run (jumps only go forward). A malformed
// program (one Check() refuses) ends with SECCOMP_RET_KILL_PROCESS.
uint32_t Evaluate(const sock_filter* prog, size_t len, const seccomp_data& data);
uint32_t Evaluate(const std::vector<sock_filter>& prog, const seccomp_data& data);

// One instruction per line: "code jt jf k" in hex (the golden format).
std::string Dump(const std::vector<sock_filter>& prog);

// Sets PR_SET_NO_NEW_PRIVS and installs `prog` on the calling thread (all
// threads with `tsync`). Returns 0 or -errno.
int Install(const std::vector<sock_filter>& prog, bool tsync);

}  // namespace seedvisor::seccomp

#endif  // SEEDVISOR_SECCOMP_BPF_H_
