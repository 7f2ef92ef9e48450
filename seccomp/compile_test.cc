// Compile() (libseccomp) keeps a table's meaning: the programs it makes, and
// the ones the build installs, decide every call as the table's rules read
// in order do (Decide() below), over every syscall number and the argument
// values the tables name.
#include "seccomp/compile.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cerrno>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "seccomp/sentry_filter.h"
#include "seccomp/sentry_policy.h"
#include "seccomp/stub_policy.h"
#include "seccomp/stub_program.h"

namespace seedvisor::seccomp {
namespace {

constexpr uint64_t kStubText = 0x7fffe0000000;
constexpr uint64_t kStubTextEnd = kStubText + 0x1000;

seccomp_data Call(uint32_t nr, std::initializer_list<uint64_t> args = {}, uint64_t ip = 0x401000) {
  seccomp_data d{};
  d.nr = static_cast<int>(nr);
  d.arch = AUDIT_ARCH_X86_64;
  d.instruction_pointer = ip;
  int i = 0;
  for (uint64_t a : args) d.args[i++] = a;
  return d;
}

// What the table means: another ABI (or a number no x86_64 syscall has: bit
// 30 or 31 set) gets the foreign action, else the first rule whose number
// and matchers all match decides, else the default.
uint32_t Decide(const Policy& p, const seccomp_data& d) {
  if (d.arch != AUDIT_ARCH_X86_64 || static_cast<uint32_t>(d.nr) >= 0x40000000u) {
    return p.foreign_abi_action;
  }
  for (const Rule& r : p.rules) {
    if (r.nr != d.nr) continue;
    bool all = true;
    for (const ArgMatch& m : r.args) all = all && (d.args[m.index] & m.mask) == (m.value & m.mask);
    if (all) return r.action;
  }
  return p.default_action;
}

// The calls to try: every number up to past the table's highest, numbers
// of other ABIs and out of range, and for each number the cartesian product
// of the values its rules name for each argument, near misses included.
std::vector<seccomp_data> Domain(const Policy& p) {
  std::set<uint32_t> nrs = {0x40000000u, 0x40000001u, 0x4000000fu, 0x400000cau, 0x7fffffffu,
                            0x80000000u, 0xbfffffffu, 0xfffffffeu, 0xffffffffu};
  int top = 0;
  for (const Rule& r : p.rules) top = std::max(top, r.nr);
  for (int nr = 0; nr <= top + 64; ++nr) nrs.insert(static_cast<uint32_t>(nr));
  std::vector<seccomp_data> out;
  for (uint32_t nr : nrs) {
    std::vector<std::set<uint64_t>> vals(6, std::set<uint64_t>{0, ~uint64_t{0}});
    for (const Rule& r : p.rules) {
      if (static_cast<uint32_t>(r.nr) != nr) continue;
      for (const ArgMatch& m : r.args) {
        const uint64_t v = m.value & m.mask;
        for (uint64_t flip : {uint64_t{0}, uint64_t{1}, uint64_t{1} << 31, uint64_t{1} << 32,
                              uint64_t{1} << 63}) {
          vals[m.index].insert(v ^ flip);
        }
        vals[m.index].insert(v | ~m.mask);  // the ends of a range, and past them
        vals[m.index].insert(v - 1);
        vals[m.index].insert((v | ~m.mask) + 1);
        if (m.mask != ~uint64_t{0}) {
          for (int b = 0; b < 64; ++b) {
            if ((m.mask >> b) & 1) vals[m.index].insert(v ^ (uint64_t{1} << b));
          }
        }
      }
    }
    std::vector<seccomp_data> calls = {Call(nr)};
    for (int i = 0; i < 6; ++i) {
      std::vector<seccomp_data> next;
      for (const seccomp_data& c : calls) {
        for (uint64_t v : vals[i]) {
          seccomp_data d = c;
          d.args[i] = v;
          next.push_back(d);
        }
      }
      calls = std::move(next);
    }
    out.insert(out.end(), calls.begin(), calls.end());
    seccomp_data i386 = Call(nr);
    i386.arch = AUDIT_ARCH_I386;
    out.push_back(i386);
  }
  return out;
}

// Checks prog against the table over Domain(p); returns how many calls ran.
size_t ExpectMeans(const std::vector<sock_filter>& prog, const Policy& p,
                   uint64_t ip = 0x401000) {
  size_t n = 0, bad = 0;
  for (seccomp_data d : Domain(p)) {
    d.instruction_pointer = ip;
    const uint32_t want = Decide(p, d);
    const uint32_t got = Evaluate(prog, d);
    ++n;
    if (got != want && ++bad <= 10) {
      ADD_FAILURE() << p.name << ": syscall " << d.nr << " arch " << std::hex << d.arch
                    << " args " << d.args[0] << " " << d.args[1] << " " << d.args[2] << " "
                    << d.args[3] << ": program says 0x" << got << ", the table 0x" << want;
    }
  }
  return n;
}

TEST(Compile, RulesMatchNumberAndArguments) {
  Policy p;
  p.default_action = ActErrno(EPERM);
  p.rules = {
      {SYS_read, {}, SECCOMP_RET_ALLOW, "t"},
      {SYS_fcntl, {ArgEq(1, F_GETFL)}, SECCOMP_RET_ALLOW, "t"},
      {SYS_mmap, {ArgMasked(2, PROT_EXEC, 0)}, SECCOMP_RET_ALLOW, "t"},
      {SYS_lseek, {ArgEq(1, 0x100000000ull)}, SECCOMP_RET_TRAP, "t"},
  };
  absl::StatusOr<std::vector<sock_filter>> prog = Compile(p);
  ASSERT_TRUE(prog.ok()) << prog.status();
  EXPECT_EQ(Evaluate(*prog, Call(SYS_read)), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_write)), ActErrno(EPERM));
  EXPECT_EQ(Evaluate(*prog, Call(SYS_fcntl, {3, F_GETFL})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_fcntl, {3, F_SETFL})), ActErrno(EPERM));
  // The high half of an argument counts.
  EXPECT_EQ(Evaluate(*prog, Call(SYS_fcntl, {3, F_GETFL | (1ull << 32)})), ActErrno(EPERM));
  EXPECT_EQ(Evaluate(*prog, Call(SYS_mmap, {0, 4096, PROT_READ | PROT_WRITE})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_mmap, {0, 4096, PROT_READ | PROT_EXEC})), ActErrno(EPERM));
  EXPECT_EQ(Evaluate(*prog, Call(SYS_lseek, {0, 0x100000000ull})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_lseek, {0, 0})), ActErrno(EPERM));
  // Other ABIs never reach the rules.
  seccomp_data i386 = Call(SYS_read);
  i386.arch = AUDIT_ARCH_I386;
  EXPECT_EQ(Evaluate(*prog, i386), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_read | 0x40000000)), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate(*prog, Call(0xffffffffu)), SECCOMP_RET_KILL_PROCESS);
  EXPECT_GT(ExpectMeans(*prog, p), 600u);
}

// The first rule that matches decides, also where libseccomp's unordered
// rules would overlap: later rules get the negation of earlier ones.
TEST(Compile, FirstMatchWinsAcrossActions) {
  Policy p;
  p.name = "order";
  p.default_action = SECCOMP_RET_KILL_PROCESS;
  p.foreign_abi_action = SECCOMP_RET_TRAP;
  p.rules = {
      {SYS_mmap, {ArgMasked(3, MAP_ANONYMOUS, MAP_ANONYMOUS)}, SECCOMP_RET_ALLOW, "anon"},
      {SYS_mmap, {}, SECCOMP_RET_TRACE, "the rest"},
      {SYS_ioctl, {ArgEq(1, FIONREAD), ArgMasked(0, 0xff00, 0x100)}, ActErrno(EIO), "both"},
      {SYS_ioctl, {ArgMasked(0, 0xf000, 0)}, SECCOMP_RET_ALLOW, "low fds"},
      {SYS_ioctl, {ArgEq(2, 7)}, SECCOMP_RET_KILL_PROCESS, "same as the default"},
      {SYS_ioctl, {}, SECCOMP_RET_TRAP, "other ioctls"},
      {SYS_close, {ArgMasked(0, ~uint64_t{63}, 768)}, SECCOMP_RET_ALLOW, "fds 768..831"},
      {SYS_close, {}, ActErrno(EBADF), "others: below or above the range"},
      {SYS_read, {}, SECCOMP_RET_ALLOW, "all reads"},
      {SYS_read, {ArgEq(0, 3)}, ActErrno(EBADF), "shadowed: never decides"},
  };
  absl::StatusOr<std::vector<sock_filter>> prog = Compile(p);
  ASSERT_TRUE(prog.ok()) << prog.status();
  EXPECT_EQ(Evaluate(*prog, Call(SYS_mmap, {0, 1, 3, MAP_PRIVATE | MAP_ANONYMOUS})),
            SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_mmap, {0, 1, 3, MAP_SHARED, 4})), SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_ioctl, {0x100, FIONREAD})), ActErrno(EIO));
  EXPECT_EQ(Evaluate(*prog, Call(SYS_ioctl, {0x200, FIONREAD})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_ioctl, {0x1000, FIONBIO, 7})), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_ioctl, {0x100, FIONREAD, 7})), ActErrno(EIO));
  EXPECT_EQ(Evaluate(*prog, Call(SYS_ioctl, {0x1000, FIONREAD})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_read, {3})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_close, {768})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_close, {831})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(*prog, Call(SYS_close, {767})), ActErrno(EBADF));
  EXPECT_EQ(Evaluate(*prog, Call(SYS_close, {832})), ActErrno(EBADF));
  EXPECT_EQ(Evaluate(*prog, Call(SYS_close, {(1ull << 32) | 768})), ActErrno(EBADF));
  EXPECT_EQ(Evaluate(*prog, Call(0xffffffffu)), SECCOMP_RET_TRAP);
  EXPECT_GT(ExpectMeans(*prog, p), 10000u);
}

TEST(Compile, WhatLibseccompCannotSayIsAClearError) {
  Policy p;
  p.name = "bad";
  p.rules = {{SYS_read, {ArgEq(6, 0)}, SECCOMP_RET_ALLOW, "seventh argument"}};
  absl::StatusOr<std::vector<sock_filter>> prog = Compile(p);
  ASSERT_FALSE(prog.ok());
  EXPECT_EQ(std::string(prog.status().message()),
            "policy \"bad\": rule 0 (read, \"seventh argument\"): argument index 6 is not 0..5");
  // "neither 1 nor 2" is two != on one argument: no libseccomp rule says it.
  p.rules = {{SYS_ioctl, {ArgEq(1, 1)}, ActErrno(EIO), "one"},
             {SYS_ioctl, {ArgEq(1, 2)}, ActErrno(EIO), "two"},
             {SYS_ioctl, {}, SECCOMP_RET_ALLOW, "the rest"}};
  prog = Compile(p);
  ASSERT_FALSE(prog.ok());
  EXPECT_EQ(std::string(prog.status().message()),
            "policy \"bad\": rule 2 (ioctl, \"the rest\"): after rule 1 (which decides "
            "otherwise): two conditions on argument 1 that libseccomp cannot compare in one rule");
  p.rules = {{SYS_read, {}, 0x12345678, "no such action"}};
  EXPECT_FALSE(Compile(p).ok());
}

// The programs the build made are what the tables mean: same decision for
// every syscall number and every argument value the tables name.
TEST(Compiled, SentryProgramMeansTheTable) {
  EXPECT_GT(ExpectMeans(SentryProgram(), SentryPolicy()), 1000u);
  EXPECT_GT(ExpectMeans(SentryProgram(true), SentryPolicy(true)), 1000u);
}

TEST(Compiled, StubProgramMeansTheTableInsideItsTextAndTrapsOutside) {
  const std::vector<sock_filter> prog = StubProgram(kStubText, kStubTextEnd);
  for (uint64_t ip : {kStubText, kStubText + 0x120, kStubTextEnd - 1}) {
    EXPECT_GT(ExpectMeans(prog, StubPolicy(), ip), 1000u) << "ip 0x" << std::hex << ip;
  }
  const uint64_t kFar = uint64_t{1} << 32;
  for (uint64_t ip : {uint64_t{0x401000}, kStubText - 1, kStubTextEnd, kStubText + kFar,
                      kStubText - kFar, ~uint64_t{0}}) {
    Policy ruled = StubPolicy();  // its numbers and arguments: the domain
    for (seccomp_data d : Domain(ruled)) {
      d.instruction_pointer = ip;
      ASSERT_EQ(Evaluate(prog, d), SECCOMP_RET_TRAP) << "syscall " << d.nr << " ip " << ip;
    }
  }
}

// The guest's CPU affinity: the stub's thread may pin itself (pid 0) from
// its text, never another thread; the sentry itself may pin none.
TEST(Compiled, OnlyAStubThreadPinsItself) {
  const std::vector<sock_filter> stub = StubProgram(kStubText, kStubTextEnd);
  EXPECT_EQ(Evaluate(stub, Call(SYS_sched_setaffinity, {0, 128, 0x1000}, kStubText + 0x20)),
            SECCOMP_RET_ALLOW);
  for (uint64_t pid : {uint64_t{1}, uint64_t{12345}, ~uint64_t{0}}) {
    EXPECT_NE(Evaluate(stub, Call(SYS_sched_setaffinity, {pid, 128, 0x1000}, kStubText + 0x20)),
              SECCOMP_RET_ALLOW);
  }
  EXPECT_EQ(Evaluate(stub, Call(SYS_sched_setaffinity, {0, 128, 0x1000})), SECCOMP_RET_TRAP);
  for (bool host_writes : {false, true}) {
    EXPECT_NE(Decide(SentryPolicy(host_writes), Call(SYS_sched_setaffinity, {0, 128, 0x1000})),
              SECCOMP_RET_ALLOW);
  }
}

}  // namespace
}  // namespace seedvisor::seccomp
