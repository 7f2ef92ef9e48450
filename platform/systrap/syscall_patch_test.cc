#include "platform/systrap/syscall_patch.h"

#include <fcntl.h>
#include <linux/membarrier.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "platform/systrap/systrap_layout.h"

extern "C" int64_t FastGsSlotCheck(uint64_t rflags_in, uint64_t* rflags_out);

namespace seedvisor::platform::systrap {
namespace {

// glibc 2.36's getppid(): mov $0x6e,%eax; syscall.
constexpr SiteBytes kGetppid = {0xb8, 0x6e, 0x00, 0x00, 0x00, 0x0f, 0x05};
constexpr uint32_t kSlot = 0x6a100;

uint32_t Imm32(const SiteBytes& b) {
  uint32_t v;
  std::memcpy(&v, &b[1], 4);
  return v;
}

TEST(SyscallPatchTest, PatchableSitesAreMovEaxSyscallOfTheTrappedNumber) {
  EXPECT_TRUE(IsPatchableSite(kGetppid, 110));
  EXPECT_FALSE(IsPatchableSite(kGetppid, 39));  // rax is not what the mov set
  // glibc's read(): xor %eax,%eax; syscall, after a `je`.
  EXPECT_FALSE(IsPatchableSite({0x0e, 0x00, 0x74, 0x17, 0x31, 0xc0, 0x0f}, 0));
  // A `mov $imm32,%eax` whose syscall is not right after it.
  EXPECT_FALSE(IsPatchableSite({0xb8, 0x6e, 0x00, 0x00, 0x00, 0x90, 0x90}, 110));
  // A huge immediate is no syscall number (IllegalAtSite relies on it).
  EXPECT_FALSE(IsPatchableSite({0xb8, 0x00, 0x00, 0x00, 0x40, 0x0f, 0x05}, 0x40000000));
}

TEST(SyscallPatchTest, TheJumpPutsAnInvalidOpcodeWhereSyscallWas) {
  auto j = EncodeJump(kSlot);
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(*j, (SiteBytes{0xff, 0x24, 0x25, 0x00, 0xa1, kInvalidOpcode, 0x00}));
  EXPECT_FALSE(EncodeJump(0x5fff8).has_value());  // below the table range
  EXPECT_FALSE(EncodeJump(0x70000).has_value());  // above it
  EXPECT_FALSE(EncodeJump(0x6a104).has_value());  // not a qword
  EXPECT_FALSE(EncodeJump(0x60010).has_value());  // second address byte 0
}

TEST(SyscallPatchTest, SlotsRejectAddressesTheJumpCannotUse) {
  auto s = EncodeSlot(kSlot, 7, 0x6a000);
  ASSERT_TRUE(s.has_value());
  uint64_t target;
  std::memcpy(&target, s->data(), 8);
  EXPECT_EQ(target, kSlot + kSlotMovOffset);
  EXPECT_EQ((*s)[kSlotMovOffset], 0xb8);
  EXPECT_EQ((*s)[kSlotJmpOffset], 0xff);
  EXPECT_FALSE(EncodeSlot(kSlot + 8, 7, 0x6a000).has_value());  // not slot-aligned
  EXPECT_FALSE(EncodeSlot(kSlot, 7, 0x6a004).has_value());      // entry not a qword
  EXPECT_FALSE(EncodeSlot(kSlot, 7, 0x80000000).has_value());   // beyond abs32
}

// Every state a rewrite passes through, one single-byte store at a time.
std::vector<SiteBytes> States(const SiteBytes& from, const SiteBytes& to) {
  std::vector<SiteBytes> out{from};
  SiteBytes s = from;
  for (const RewriteStep& step : PlanRewrite(from, to)) {
    for (const ByteWrite& w : step) {
      s[w.offset] = w.value;
      out.push_back(s);
    }
  }
  return out;
}

void CheckEveryStateIsOldNewOrTraps(const SiteBytes& from, const SiteBytes& to) {
  const std::vector<SiteBytes> states = States(from, to);
  ASSERT_EQ(states.back(), to);
  for (const SiteBytes& s : states) {
    // An instruction starting at byte 0: the old one whole, the new one
    // whole, or the fence.
    EXPECT_TRUE(s == from || s == to || s[0] == kInvalidOpcode);
    // One starting at byte 5 (a jump to the old `syscall`, or the CPU
    // after the old `mov`): the old bytes whole, the new ones whole (a
    // `syscall` again when unpatching), or invalid.
    EXPECT_TRUE((s[5] == from[5] && s[6] == from[6]) || (s[5] == to[5] && s[6] == to[6]) ||
                s[5] == kInvalidOpcode);
  }
}

TEST(SyscallPatchTest, RewritesPassOnlyThroughOldNewOrTrappingStates) {
  const SiteBytes jump = *EncodeJump(kSlot);
  CheckEveryStateIsOldNewOrTraps(kGetppid, jump);  // patch
  CheckEveryStateIsOldNewOrTraps(jump, kGetppid);  // unpatch (ptrace, mprotect)
}

TEST(SyscallPatchTest, AStaleMovReadsTheOldNumberOrNoSyscallNumber) {
  // A CPU that fetched `b8` before the fence and reads bytes 1-4 while
  // they change (only possible without the SYNC_CORE between steps).
  const SiteBytes jump = *EncodeJump(kSlot);
  for (const SiteBytes& s : States(kGetppid, jump)) {
    const uint32_t imm = Imm32(s);
    EXPECT_TRUE(imm == 110 || imm >= (1u << 24)) << std::hex << imm;
    if (imm >= (1u << 24)) {
      EXPECT_EQ(IllegalAtSite(0x1000, 0x1005, imm).kind, IllegalFixup::kRetry);
    }
  }
}

TEST(SyscallPatchTest, IllegalInstructionsAtASite) {
  const uint64_t site = 0x7f0000001000;
  EXPECT_EQ(IllegalAtSite(site, site, 110).kind, IllegalFixup::kRetry);
  EXPECT_EQ(IllegalAtSite(site, site + 5, 110).kind, IllegalFixup::kSyscall);
  EXPECT_EQ(IllegalAtSite(site, site + 5, 219).kind, IllegalFixup::kSyscall);  // restart_syscall
  EXPECT_EQ(IllegalAtSite(site, site + 5, 0xa1002524).kind, IllegalFixup::kRetry);
  EXPECT_EQ(IllegalAtSite(site, site + 3, 110).kind, IllegalFixup::kNotOurs);
  EXPECT_EQ(IllegalAtSite(site, site + 7, 110).kind, IllegalFixup::kNotOurs);
}

// The encodings on this CPU: a page of code that is never writable, patched
// through /proc/self/mem (FOLL_FORCE, as the sentry writes a stub's text).
class OnThisCpu : public ::testing::Test {
 protected:
  void SetUp() override {
    table_ = mmap(reinterpret_cast<void*>(uintptr_t{0x6a000}), 4096, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    ASSERT_EQ(table_, reinterpret_cast<void*>(uintptr_t{0x6a000})) << "0x6a000 is taken";
    ASSERT_EQ(mprotect(table_, 4096, PROT_READ | PROT_EXEC), 0);
    // Two pages: code (read+exec), then the cells it writes (read+write).
    void* m = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    code_ = static_cast<uint8_t*>(m);
    cells_ = reinterpret_cast<uint64_t*>(code_ + 4096);
    Assemble();
    ASSERT_EQ(mprotect(code_, 4096, PROT_READ | PROT_EXEC), 0);
    mem_ = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    ASSERT_GE(mem_, 0);
    ASSERT_EQ(syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0), 0)
        << "the design serializes CPUs between rewrite steps with this";
  }
  void TearDown() override {
    if (mem_ >= 0) close(mem_);
    if (code_ != nullptr) munmap(code_, 8192);
    if (table_ != MAP_FAILED) munmap(table_, 4096);
  }

  // site:    mov $110,%eax; syscall; ret
  // harness: records %rsp, then jumps to the site (whose `ret` returns to
  //          the C++ caller)
  // to5:     mov $39,%eax; jmp site+5 (a jump to the old `syscall`)
  // entry:   the stand-in for the stub's fast entry: records %rsp and the
  //          id the slot passed, counts, makes the site's syscall (nr and
  //          return address from cells, as the sentry's SiteTable has them)
  void Assemble() {
    size_t at = 0;
    auto emit = [&](std::initializer_list<uint8_t> b) {
      for (uint8_t x : b) code_[at++] = x;
    };
    auto rel32 = [&](uint64_t target) {  // relative to the end of the rel32
      const int32_t r = static_cast<int32_t>(target - (Addr(at) + 4));
      std::memcpy(code_ + at, &r, 4);
      at += 4;
    };
    std::memcpy(code_, kGetppid.data(), kSiteSize);
    code_[kSiteSize] = 0xc3;  // ret
    at = kHarness;
    emit({0x48, 0x89, 0xe0, 0x48, 0xa3});  // mov %rsp,%rax; movabs %rax,site_rsp
    const uint64_t site_rsp = Addr(4096 + 8 * kSiteRsp);
    std::memcpy(code_ + at, &site_rsp, 8);
    at += 8;
    emit({0xe9});
    rel32(Addr(0));
    at = kTo5;
    emit({0xb8, 39, 0, 0, 0, 0xe9});
    rel32(Addr(5));
    at = kEntry;
    emit({0x49, 0x89, 0xe3, 0x4c, 0x89, 0x1d});  // mov %rsp,%r11; mov %r11,entry_rsp
    rel32(Addr(4096 + 8 * kEntryRsp));
    emit({0x48, 0x89, 0x05});  // mov %rax,id
    rel32(Addr(4096 + 8 * kId));
    emit({0x48, 0xff, 0x05});  // incq count
    rel32(Addr(4096 + 8 * kCount));
    emit({0x48, 0x8b, 0x05});  // mov nr,%rax
    rel32(Addr(4096 + 8 * kNr));
    emit({0x0f, 0x05, 0xff, 0x25});  // syscall; jmp *ret
    rel32(Addr(4096 + 8 * kRet));
  }

  uint64_t Addr(size_t off) const { return reinterpret_cast<uint64_t>(code_) + off; }
  long Call(size_t off) {
    // SAFETY: code this fixture assembled, entered by the SysV call ABI;
    // it clobbers only rax, rcx, r11 (caller-saved).
    return reinterpret_cast<long (*)()>(Addr(off))();
  }
  void Poke(uint64_t addr, const void* p, size_t n) {
    ASSERT_EQ(pwrite(mem_, p, n, static_cast<off_t>(addr)), static_cast<ssize_t>(n));
  }
  void Rewrite(const SiteBytes& from, const SiteBytes& to) {
    for (const RewriteStep& step : PlanRewrite(from, to)) {
      for (const ByteWrite& w : step) Poke(Addr(w.offset), &w.value, 1);
      ASSERT_EQ(syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0, 0), 0);
    }
  }
  // Runs code at `off`, which must raise SIGILL; returns its rip and rax.
  std::pair<uint64_t, uint64_t> Sigill(size_t off) {
    struct sigaction sa {
    }, old{};
    sa.sa_sigaction = [](int, siginfo_t*, void* uc) {
      auto* g = static_cast<ucontext_t*>(uc)->uc_mcontext.gregs;
      trap_rip = static_cast<uint64_t>(g[REG_RIP]);
      trap_rax = static_cast<uint64_t>(g[REG_RAX]);
      siglongjmp(env, 1);
    };
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGILL, &sa, &old);
    trap_rip = 0;
    trap_rax = 0;
    if (sigsetjmp(env, 1) == 0) Call(off);
    sigaction(SIGILL, &old, nullptr);
    return {trap_rip, trap_rax};
  }

  static constexpr size_t kHarness = 0x40, kTo5 = 0x80, kEntry = 0xc0;
  static constexpr size_t kSiteRsp = 0, kEntryRsp = 1, kRet = 2, kCount = 3, kId = 4, kNr = 5;
  static inline sigjmp_buf env;
  static inline volatile uint64_t trap_rip, trap_rax;
  void* table_ = MAP_FAILED;
  uint8_t* code_ = nullptr;
  uint64_t* cells_ = nullptr;
  int mem_ = -1;
};

TEST_F(OnThisCpu, APatchedSiteRunsTheSyscallWithoutPushingAndUnpatchesBack) {
  EXPECT_EQ(Call(kHarness), getppid());
  // The slot and the table's entry qword, written like the site.
  const uint32_t entry_qword = 0x6a000;
  const uint64_t entry = Addr(kEntry);
  Poke(entry_qword, &entry, 8);
  auto slot = EncodeSlot(kSlot, 7, entry_qword);
  ASSERT_TRUE(slot.has_value());
  cells_[kNr] = 110;
  cells_[kRet] = Addr(kSiteSize);
  Poke(kSlot, slot->data(), slot->size());

  const SiteBytes jump = *EncodeJump(kSlot);
  Rewrite(kGetppid, jump);
  SiteBytes now;
  std::memcpy(now.data(), code_, kSiteSize);
  ASSERT_EQ(now, jump);
  EXPECT_EQ(Call(kHarness), getppid());
  EXPECT_EQ(cells_[kCount], 1u);
  EXPECT_EQ(cells_[kId], 7u);
  EXPECT_EQ(cells_[kEntryRsp], cells_[kSiteRsp]);  // nothing pushed: the red zone is intact

  // A jump to the old `syscall` lands on the invalid byte with its own rax.
  auto [rip, rax] = Sigill(kTo5);
  EXPECT_EQ(rip, Addr(5));
  EXPECT_EQ(rax, 39u);
  EXPECT_EQ(IllegalAtSite(Addr(0), rip, rax).kind, IllegalFixup::kSyscall);

  Rewrite(jump, kGetppid);
  std::memcpy(now.data(), code_, kSiteSize);
  EXPECT_EQ(now, kGetppid);
  EXPECT_EQ(Call(kHarness), getppid());
  EXPECT_EQ(cells_[kCount], 1u);  // the original syscall again
}

TEST_F(OnThisCpu, TheFenceTrapsAtBothInstructionStarts) {
  const SiteBytes jump = *EncodeJump(kSlot);
  const RewriteStep fence = PlanRewrite(kGetppid, jump).front();
  for (const ByteWrite& w : fence) Poke(Addr(w.offset), &w.value, 1);
  auto [rip, rax] = Sigill(kHarness);
  EXPECT_EQ(rip, Addr(0));
  EXPECT_EQ(IllegalAtSite(Addr(0), rip, rax).kind, IllegalFixup::kRetry);
  std::tie(rip, rax) = Sigill(kTo5);
  EXPECT_EQ(rip, Addr(5));
  EXPECT_EQ(IllegalAtSite(Addr(0), rip, rax).kind, IllegalFixup::kSyscall);
}

// fast_gs_check_amd64.inc mirrors the layout.
static_assert(kRegionBase == 0x7fffc0000000);
static_assert(kSlotSize == uint64_t{1} << 15);
static_assert(kSlots == 1 << 14);

uint64_t ReadGsBase() {
  uint64_t v;
  asm volatile("rdgsbase %0" : "=r"(v));
  return v;
}
void WriteGsBase(uint64_t v) { asm volatile("wrgsbase %0" : : "r"(v) : "memory"); }

TEST(FastGsSlotCheckTest, FindsTheSlotFromGsAloneAndKeepsEveryFlag) {
  // glibc uses FS on x86-64, never GS: the test may move GS for a while.
  const uint64_t saved = ReadGsBase();
  struct Case {
    uint64_t gs;
    int64_t slot;
  };
  const Case cases[] = {
      {kRegionBase, 0},
      {kRegionBase + kSlotSize, 1},
      {kRegionBase + (kSlots - 1) * kSlotSize, kSlots - 1},
      {kRegionBase + kSlots * kSlotSize, -1},  // just past the region
      {kRegionBase - kSlotSize, -1},           // below it
      {kRegionBase + kSlotSize + 8, -1},       // inside a slot
      {kRegionBase + kCommSize, -1},
      {0, -1},               // the guest's usual GS
      {0x7f0000000000, -1},  // a guest TLS block
  };
  // The arithmetic flags all set, then all clear (bit 1 is always set).
  for (uint64_t flags : {uint64_t{0x8d7}, uint64_t{0x2}}) {
    for (const Case& c : cases) {
      WriteGsBase(c.gs);
      uint64_t after = 0;
      const int64_t slot = FastGsSlotCheck(flags, &after);
      WriteGsBase(saved);
      EXPECT_EQ(slot, c.slot) << std::hex << c.gs;
      EXPECT_EQ(after & 0xcd7, flags) << std::hex << c.gs;
    }
  }
}

}  // namespace
}  // namespace seedvisor::platform::systrap
