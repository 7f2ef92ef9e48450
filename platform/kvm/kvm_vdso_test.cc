// The guest's vDSO on kvm (README.md, "The vDSO"): a guest that calls the
// vDSO's clock_gettime a thousand times, then gettimeofday, time and
// getcpu, leaves the VM once (for the syscall that ends it), and reads the
// host's clocks: monotonic never goes back, realtime matches the host's.
#include <elf.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <time.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "platform/kvm/kvm_address_space.h"
#include "platform/kvm/kvm_probe.h"
#include "platform/platform.h"

// The guest: rbx = clock_gettime, rbp = gettimeofday, r14 = time, r15 =
// getcpu (the vDSO's), r12 = where results go, r13 = how many monotonic
// reads. Results: r13 timespecs, then a realtime timespec, a timeval, a
// time_t, getcpu's cpu and node; then getppid() ends the run.
extern "C" const uint8_t kVdsoGuest[];
extern "C" const uint8_t kVdsoGuestEnd[];
asm(R"(
  .pushsection .rodata
  .globl kVdsoGuest, kVdsoGuestEnd
kVdsoGuest:
1:
  mov $1, %edi
  mov %r12, %rsi
  call *%rbx
  add $16, %r12
  dec %r13
  jnz 1b
  xor %edi, %edi
  mov %r12, %rsi
  call *%rbx
  lea 16(%r12), %rdi
  xor %esi, %esi
  call *%rbp
  xor %edi, %edi
  call *%r14
  mov %rax, 32(%r12)
  lea 40(%r12), %rdi
  lea 44(%r12), %rsi
  xor %edx, %edx
  call *%r15
  mov $110, %eax
  syscall
kVdsoGuestEnd:
  .popsection
)");

namespace seedvisor::platform::kvm {
namespace {

constexpr uint64_t kCode = 0x400000;
constexpr uint64_t kData = 0x500000;
constexpr uint64_t kDataSize = 0x10000;
constexpr uint64_t kStack = 0x600000;
constexpr int kReads = 1000;

// The offset of `name` in the vDSO, from this process's own (the stub's is
// the same kernel's image).
uint64_t VdsoOffset(const char* name) {
  const auto base = static_cast<uintptr_t>(getauxval(AT_SYSINFO_EHDR));
  if (base == 0) return 0;
  // SAFETY: the kernel maps the whole vDSO image, headers included.
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  const auto* ph = reinterpret_cast<const Elf64_Phdr*>(base + eh->e_phoff);
  uint64_t load = 0;
  for (int i = 0; i < eh->e_phnum; ++i) {
    if (ph[i].p_type == PT_LOAD) {
      load = ph[i].p_vaddr - ph[i].p_offset;
      break;
    }
  }
  const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_DYNSYM) continue;
    const auto* sym = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
    const char* str = reinterpret_cast<const char*>(base + sh[sh[i].sh_link].sh_offset);
    for (size_t j = 0; j < sh[i].sh_size / sizeof(Elf64_Sym); ++j) {
      if (std::strcmp(str + sym[j].st_name, name) == 0) return sym[j].st_value - load;
    }
  }
  return 0;
}

// Why the vDSO's clock_gettime makes the syscall itself on this host, or
// "" if it does not. The vDSO's own rule (its vvar data's clock mode: a
// TSC, or a paravirtual clock marked stable, it reads itself; hpet,
// acpi_pm or a TSC marked unstable it does not) decides, so it is asked:
// a child whose clock_gettime syscall fails with EHWPOISON (seccomp) calls
// the vDSO's clock_gettime and says whether it got that error.
std::string VdsoFallsBackWhy() {
  const auto base = static_cast<uintptr_t>(getauxval(AT_SYSINFO_EHDR));
  const uint64_t off = VdsoOffset("__vdso_clock_gettime");
  if (base == 0 || off == 0) return "this process has no vDSO clock_gettime";
  using ClockGettime = int (*)(clockid_t, timespec*);
  auto vdso_clock_gettime = reinterpret_cast<ClockGettime>(base + off);
  const pid_t pid = fork();
  if (pid == 0) {
    sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clock_gettime, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EHWPOISON),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{.len = sizeof(f) / sizeof(f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
      _exit(2);
    }
    timespec ts;
    // The vDSO returns the syscall's -errno when it falls back.
    _exit(vdso_clock_gettime(CLOCK_MONOTONIC, &ts) == -EHWPOISON ? 1 : 0);
  }
  int ws = 0;
  if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws) == 2) {
    return "could not ask the vDSO (fork, seccomp)";
  }
  if (WEXITSTATUS(ws) == 0) return "";
  std::string cs;
  std::ifstream("/sys/devices/system/clocksource/clocksource0/current_clocksource") >> cs;
  return "the host's clocksource (" + cs + ") has no vDSO mode: its clock_gettime is a syscall";
}

int64_t Ns(clockid_t c) {
  timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

struct Results {
  std::vector<int64_t> monotonic;
  int64_t realtime = 0, tod_us = 0, time = 0;
  uint32_t cpu = ~0u, node = ~0u;
  uint64_t exits = 0;
};

class KvmVdsoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<KvmHost> h = ProbeKvm();
    if (!h.ok()) GTEST_SKIP() << h.status().message();
    if (!h->vdso) GTEST_SKIP() << "no vDSO on this host's KVM: " << h->no_vdso_why;
    auto p = NewPlatform("kvm");
    ASSERT_TRUE(p.ok()) << p.status();
    platform_ = std::move(*p);
    auto as = platform_->NewAddressSpace();
    ASSERT_TRUE(as.ok()) << as.status();
    as_ = *as;
    ASSERT_FALSE(as_->VdsoBase().IsNull());
    auto ctx = platform_->Attach(as_, as_->initial_thread());
    ASSERT_TRUE(ctx.ok()) << ctx.status();
    ctx_ = std::move(*ctx);
    kvm_ = dynamic_cast<KvmContext*>(ctx_.get());
    ASSERT_NE(kvm_, nullptr);
    const int rw = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
    ASSERT_TRUE(as_->Map(UserAddr(kCode), kPageSize, PROT_READ | PROT_EXEC, flags, -1, 0).ok());
    ASSERT_TRUE(as_->WriteForce(UserAddr(kCode), kVdsoGuest, kVdsoGuestEnd - kVdsoGuest).ok());
    ASSERT_TRUE(as_->Map(UserAddr(kData), kDataSize, rw, flags, -1, 0).ok());
    ASSERT_TRUE(as_->Map(UserAddr(kStack), kPageSize, rw, flags, -1, 0).ok());
  }

  // Runs the guest once; the VM exits of that run in `exits`.
  Results RunGuest() {
    Results out;
    const uint64_t vdso = as_->VdsoBase().value();
    Registers r{};
    r.rip = kCode;
    r.rsp = kStack + kPageSize;
    r.cs = 0x33, r.ss = 0x2b, r.eflags = 0x202;
    r.orig_rax = static_cast<uint64_t>(-1);
    r.rbx = vdso + VdsoOffset("__vdso_clock_gettime");
    r.rbp = vdso + VdsoOffset("__vdso_gettimeofday");
    r.r14 = vdso + VdsoOffset("__vdso_time");
    r.r15 = vdso + VdsoOffset("__vdso_getcpu");
    r.r12 = kData;
    r.r13 = kReads;
    const uint64_t before = kvm_->exits();
    Stop s = ctx_->Run(r);
    out.exits = kvm_->exits() - before;
    EXPECT_EQ(s.kind, StopKind::kSyscall) << "signal " << s.info.si_signo << " at " << std::hex << r.rip;
    EXPECT_EQ(r.orig_rax, static_cast<uint64_t>(SYS_getppid));
    std::vector<uint8_t> buf(kReads * 16 + 48);
    EXPECT_TRUE(as_->Read(UserAddr(kData), buf.data(), buf.size()).ok());
    auto ts_ns = [&](size_t off) {
      timespec ts;
      std::memcpy(&ts, buf.data() + off, sizeof(ts));
      return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
    };
    for (int i = 0; i < kReads; ++i) out.monotonic.push_back(ts_ns(i * 16));
    const size_t end = kReads * 16;
    out.realtime = ts_ns(end);
    timeval tv;
    std::memcpy(&tv, buf.data() + end + 16, sizeof(tv));
    out.tod_us = tv.tv_sec * 1'000'000LL + tv.tv_usec;
    std::memcpy(&out.time, buf.data() + end + 32, 8);
    std::memcpy(&out.cpu, buf.data() + end + 40, 4);
    std::memcpy(&out.node, buf.data() + end + 44, 4);
    return out;
  }

  std::unique_ptr<Platform> platform_;
  std::shared_ptr<AddressSpace> as_;
  std::unique_ptr<Context> ctx_;
  KvmContext* kvm_ = nullptr;
};

TEST_F(KvmVdsoTest, ClocksRunInTheVmWithoutAnExit) {
  ASSERT_NE(VdsoOffset("__vdso_clock_gettime"), 0u);
  // Where the host's own vDSO makes the syscall, so does the guest's (a
  // VM exit per read): nothing of ours to check.
  if (std::string why = VdsoFallsBackWhy(); !why.empty()) GTEST_SKIP() << why;
  const int64_t mono0 = Ns(CLOCK_MONOTONIC), real0 = Ns(CLOCK_REALTIME);
  Results res = RunGuest();
  const int64_t mono1 = Ns(CLOCK_MONOTONIC), real1 = Ns(CLOCK_REALTIME);
  // One exit: the getppid that ends the run. A clock read through a
  // syscall would have made a thousand more.
  EXPECT_EQ(res.exits, 1u);
  ASSERT_EQ(res.monotonic.size(), static_cast<size_t>(kReads));
  EXPECT_GE(res.monotonic.front(), mono0);
  EXPECT_LE(res.monotonic.back(), mono1);
  for (int i = 1; i < kReads; ++i) {
    ASSERT_GE(res.monotonic[i], res.monotonic[i - 1]) << "read " << i << " went back";
  }
  EXPECT_GT(res.monotonic.back(), res.monotonic.front());  // it advances
  // Realtime as the host's, between the host's reads around the run.
  EXPECT_GE(res.realtime, real0);
  EXPECT_LE(res.realtime, real1);
  EXPECT_GE(res.tod_us, real0 / 1000);
  EXPECT_LE(res.tod_us, real1 / 1000 + 1);
  EXPECT_GE(res.time, real0 / 1'000'000'000);
  EXPECT_LE(res.time, real1 / 1'000'000'000);
  EXPECT_LT(res.cpu, static_cast<uint32_t>(get_nprocs_conf()));
}

}  // namespace
}  // namespace seedvisor::platform::kvm
