#include "seccomp/bpf.h"

#include <linux/audit.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace seedvisor::seccomp {
namespace {

constexpr uint32_t kNrOff = offsetof(seccomp_data, nr);
constexpr uint32_t kArchOff = offsetof(seccomp_data, arch);
constexpr uint32_t kIpOff = offsetof(seccomp_data, instruction_pointer);
constexpr uint32_t ArgLo(int i) { return offsetof(seccomp_data, args) + 8 * i; }
constexpr uint32_t ArgHi(int i) { return ArgLo(i) + 4; }  // little-endian
constexpr uint32_t kX32Bit = 0x40000000;

sock_filter Stmt(uint16_t code, uint32_t k) { return BPF_STMT(code, k); }
sock_filter Jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  return BPF_JUMP(code, k, jt, jf);
}

// Compares the 32-bit word at `off`, masked, with `value`; on mismatch jumps
// to the instruction marked by `fail` (patched later).
void EmitWordCheck(std::vector<sock_filter>& out, std::vector<size_t>& fails, uint32_t off,
                   uint32_t mask, uint32_t value) {
  if (mask == 0) return;  // nothing to compare in this half
  out.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, off));
  if (mask != 0xffffffffu) out.push_back(Stmt(BPF_ALU | BPF_AND | BPF_K, mask));
  fails.push_back(out.size());
  out.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, value & mask, 0, 0));
}

}  // namespace

std::vector<sock_filter> Compile(const Policy& p) {
  std::vector<sock_filter> out;
  // Architecture first: syscall numbers mean nothing without it.
  out.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kArchOff));
  out.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
  out.push_back(Stmt(BPF_RET | BPF_K, p.foreign_abi_action));
  out.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kNrOff));
  out.push_back(Jump(BPF_JMP | BPF_JSET | BPF_K, kX32Bit, 0, 1));
  out.push_back(Stmt(BPF_RET | BPF_K, p.foreign_abi_action));
  if (p.ip_end > p.ip_begin) {
    // Both ends must share the high word (a range within one 4 GiB window).
    const uint32_t hi = static_cast<uint32_t>(p.ip_begin >> 32);
    const uint32_t lo_begin = static_cast<uint32_t>(p.ip_begin);
    const uint32_t lo_end = static_cast<uint32_t>(p.ip_end - 1);
    out.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kIpOff + 4));
    out.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, hi, 1, 0));
    out.push_back(Stmt(BPF_RET | BPF_K, p.outside_action));
    out.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kIpOff));
    out.push_back(Jump(BPF_JMP | BPF_JGE | BPF_K, lo_begin, 0, 1));  // below: ret
    out.push_back(Jump(BPF_JMP | BPF_JGT | BPF_K, lo_end, 0, 1));    // above: ret
    out.push_back(Stmt(BPF_RET | BPF_K, p.outside_action));
  }
  for (const Rule& r : p.rules) {
    std::vector<size_t> fails;
    out.push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kNrOff));
    fails.push_back(out.size());
    out.push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(r.nr), 0, 0));
    for (const ArgMatch& m : r.args) {
      EmitWordCheck(out, fails, ArgLo(m.index), static_cast<uint32_t>(m.mask),
                    static_cast<uint32_t>(m.value));
      EmitWordCheck(out, fails, ArgHi(m.index), static_cast<uint32_t>(m.mask >> 32),
                    static_cast<uint32_t>(m.value >> 32));
    }
    out.push_back(Stmt(BPF_RET | BPF_K, r.action));
    const size_t next = out.size();
    for (size_t f : fails) {
      // A rule is a handful of instructions, far below the 255 limit of jf.
      out[f].jt = 0;
      out[f].jf = static_cast<uint8_t>(next - f - 1);
    }
  }
  out.push_back(Stmt(BPF_RET | BPF_K, p.default_action));
  return out;
}

std::string Dump(const std::vector<sock_filter>& prog) {
  std::string s;
  char line[64];
  for (const sock_filter& in : prog) {
    std::snprintf(line, sizeof(line), "%04x %02x %02x %08x\n", in.code, in.jt, in.jf, in.k);
    s += line;
  }
  return s;
}

int Install(const std::vector<sock_filter>& prog, bool tsync) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  sock_fprog fprog{static_cast<unsigned short>(prog.size()),
                   const_cast<sock_filter*>(prog.data())};
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                   tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0, &fprog);
  return r == 0 ? 0 : (r > 0 ? -ESRCH : -errno);
}

}  // namespace seedvisor::seccomp
