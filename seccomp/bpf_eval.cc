// The classic-BPF checker and interpreter for seccomp programs: the rules
// Linux applies before it installs a filter, and a bounded evaluator.
#include <linux/filter.h>
#include <stddef.h>

#include <cerrno>
#include <cstring>

#include "seccomp/bpf.h"

namespace seedvisor::seccomp {
namespace {

bool IsConditionalJump(uint16_t code) {
  if (BPF_CLASS(code) != BPF_JMP) return false;
  switch (BPF_OP(code)) {
    case BPF_JEQ:
    case BPF_JGT:
    case BPF_JGE:
    case BPF_JSET:
      return true;
    default:
      return false;
  }
}

// The opcodes seccomp_check_filter() lets through (after it turns the
// LEN loads into immediates); everything else is EINVAL. BPF_MOD and the
// packet loads (H/B, IND, MSH) are valid classic BPF but not seccomp.
bool SeccompAllows(uint16_t code) {
  switch (code) {
    case BPF_LD | BPF_W | BPF_ABS:
    case BPF_LD | BPF_W | BPF_LEN:
    case BPF_LDX | BPF_W | BPF_LEN:
    case BPF_RET | BPF_K:
    case BPF_RET | BPF_A:
    case BPF_ALU | BPF_NEG:
    case BPF_LD | BPF_IMM:
    case BPF_LDX | BPF_IMM:
    case BPF_MISC | BPF_TAX:
    case BPF_MISC | BPF_TXA:
    case BPF_LD | BPF_MEM:
    case BPF_LDX | BPF_MEM:
    case BPF_ST:
    case BPF_STX:
    case BPF_JMP | BPF_JA:
      return true;
    default:
      break;
  }
  if (BPF_CLASS(code) == BPF_ALU && (code & ~0xf8) == BPF_ALU) {  // op | K or X
    switch (BPF_OP(code)) {
      case BPF_ADD: case BPF_SUB: case BPF_MUL: case BPF_DIV:
      case BPF_AND: case BPF_OR: case BPF_XOR: case BPF_LSH: case BPF_RSH:
        return true;
      default:
        return false;
    }
  }
  if (IsConditionalJump(code) && (code & ~0xf8) == BPF_JMP) return true;
  return false;
}

// check_load_and_stores() (net/core/filter.c): every scratch word is
// stored on every path before it is loaded.
bool LoadsFollowStores(const sock_filter* prog, size_t len) {
  std::vector<uint16_t> masks(len, 0xffff);
  uint16_t valid = 0;
  for (size_t pc = 0; pc < len; ++pc) {
    valid &= masks[pc];
    const sock_filter& in = prog[pc];
    if (in.code == BPF_ST || in.code == BPF_STX) {
      valid |= 1u << in.k;
    } else if (in.code == (BPF_LD | BPF_MEM) || in.code == (BPF_LDX | BPF_MEM)) {
      if (!(valid & (1u << in.k))) return false;
    } else if (in.code == (BPF_JMP | BPF_JA)) {
      masks[pc + 1 + in.k] &= valid;
      valid = 0xffff;
    } else if (IsConditionalJump(in.code)) {
      masks[pc + 1 + in.jt] &= valid;
      masks[pc + 1 + in.jf] &= valid;
      valid = 0xffff;
    }
  }
  return true;
}

}  // namespace

int Check(const sock_filter* prog, size_t len) {
  if (len == 0 || len > BPF_MAXINSNS) return EINVAL;
  for (size_t pc = 0; pc < len; ++pc) {
    const sock_filter& in = prog[pc];
    if (!SeccompAllows(in.code)) return EINVAL;
    const bool is_k = BPF_SRC(in.code) == BPF_K;
    switch (BPF_CLASS(in.code)) {
      case BPF_ALU:
        if (is_k && BPF_OP(in.code) == BPF_DIV && in.k == 0) return EINVAL;
        if (is_k && (BPF_OP(in.code) == BPF_LSH || BPF_OP(in.code) == BPF_RSH) && in.k >= 32) {
          return EINVAL;
        }
        break;
      case BPF_LD:
      case BPF_LDX:
        if (BPF_MODE(in.code) == BPF_MEM && in.k >= BPF_MEMWORDS) return EINVAL;
        // seccomp_check_filter(): seccomp_data words only, aligned.
        if (BPF_MODE(in.code) == BPF_ABS && (in.k >= sizeof(seccomp_data) || in.k % 4 != 0)) {
          return EINVAL;
        }
        break;
      case BPF_ST:
      case BPF_STX:
        if (in.k >= BPF_MEMWORDS) return EINVAL;
        break;
      case BPF_JMP:
        // Forward only, and inside the program (bpf_check_classic()).
        if (BPF_OP(in.code) == BPF_JA) {
          if (in.k >= len - pc - 1) return EINVAL;
        } else if (pc + in.jt + 1 >= len || pc + in.jf + 1 >= len) {
          return EINVAL;
        }
        break;
      default:
        break;
    }
  }
  if (!LoadsFollowStores(prog, len)) return EINVAL;
  if (BPF_CLASS(prog[len - 1].code) != BPF_RET) return EINVAL;
  return 0;
}

int Check(const std::vector<sock_filter>& prog) { return Check(prog.data(), prog.size()); }

uint32_t Evaluate(const sock_filter* prog, size_t len, const seccomp_data& data) {
  uint32_t a = 0, x = 0;
  uint32_t mem[BPF_MEMWORDS] = {};
  // Every instruction moves pc forward, so a program runs at most `len`
  // instructions; anything Check() would refuse ends it with KILL_PROCESS.
  for (size_t pc = 0; pc < len; ++pc) {
    const sock_filter& in = prog[pc];
    const uint32_t src = BPF_SRC(in.code) == BPF_X ? x : in.k;
    switch (in.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        if (in.k >= sizeof(data) || in.k % 4 != 0) return SECCOMP_RET_KILL_PROCESS;
        // seccomp_data is host-endian: a word is a plain load.
        std::memcpy(&a, reinterpret_cast<const char*>(&data) + in.k, 4);
        break;
      case BPF_LD | BPF_W | BPF_LEN: a = sizeof(data); break;
      case BPF_LDX | BPF_W | BPF_LEN: x = sizeof(data); break;
      case BPF_LD | BPF_IMM: a = in.k; break;
      case BPF_LDX | BPF_IMM: x = in.k; break;
      case BPF_LD | BPF_MEM:
      case BPF_LDX | BPF_MEM:
        if (in.k >= BPF_MEMWORDS) return SECCOMP_RET_KILL_PROCESS;
        (BPF_CLASS(in.code) == BPF_LD ? a : x) = mem[in.k];
        break;
      case BPF_ST:
      case BPF_STX:
        if (in.k >= BPF_MEMWORDS) return SECCOMP_RET_KILL_PROCESS;
        mem[in.k] = in.code == BPF_ST ? a : x;
        break;
      case BPF_MISC | BPF_TAX: x = a; break;
      case BPF_MISC | BPF_TXA: a = x; break;
      case BPF_ALU | BPF_NEG: a = -a; break;
      case BPF_ALU | BPF_ADD | BPF_K: case BPF_ALU | BPF_ADD | BPF_X: a += src; break;
      case BPF_ALU | BPF_SUB | BPF_K: case BPF_ALU | BPF_SUB | BPF_X: a -= src; break;
      case BPF_ALU | BPF_MUL | BPF_K: case BPF_ALU | BPF_MUL | BPF_X: a *= src; break;
      case BPF_ALU | BPF_DIV | BPF_K:
      case BPF_ALU | BPF_DIV | BPF_X:
        // Linux's converted program returns 0 on a division by zero.
        if (src == 0) return 0;
        a /= src;
        break;
      case BPF_ALU | BPF_AND | BPF_K: case BPF_ALU | BPF_AND | BPF_X: a &= src; break;
      case BPF_ALU | BPF_OR | BPF_K: case BPF_ALU | BPF_OR | BPF_X: a |= src; break;
      case BPF_ALU | BPF_XOR | BPF_K: case BPF_ALU | BPF_XOR | BPF_X: a ^= src; break;
      case BPF_ALU | BPF_LSH | BPF_K: case BPF_ALU | BPF_LSH | BPF_X: a <<= (src & 31); break;
      case BPF_ALU | BPF_RSH | BPF_K: case BPF_ALU | BPF_RSH | BPF_X: a >>= (src & 31); break;
      case BPF_JMP | BPF_JA:
        if (in.k >= len - pc - 1) return SECCOMP_RET_KILL_PROCESS;
        pc += in.k;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K: case BPF_JMP | BPF_JEQ | BPF_X:
        pc += (a == src) ? in.jt : in.jf;
        break;
      case BPF_JMP | BPF_JGT | BPF_K: case BPF_JMP | BPF_JGT | BPF_X:
        pc += (a > src) ? in.jt : in.jf;
        break;
      case BPF_JMP | BPF_JGE | BPF_K: case BPF_JMP | BPF_JGE | BPF_X:
        pc += (a >= src) ? in.jt : in.jf;
        break;
      case BPF_JMP | BPF_JSET | BPF_K: case BPF_JMP | BPF_JSET | BPF_X:
        pc += (a & src) ? in.jt : in.jf;
        break;
      case BPF_RET | BPF_K: return in.k;
      case BPF_RET | BPF_A: return a;
      default:
        return SECCOMP_RET_KILL_PROCESS;
    }
  }
  return SECCOMP_RET_KILL_PROCESS;  // fell off the end: Check() refuses such programs
}

uint32_t Evaluate(const std::vector<sock_filter>& prog, const seccomp_data& data) {
  return Evaluate(prog.data(), prog.size(), data);
}

}  // namespace seedvisor::seccomp
