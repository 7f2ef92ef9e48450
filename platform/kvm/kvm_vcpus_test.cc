// The VM's vCPUs shared by its threads (VcpuPool; README.md, "vCPUs"), on
// a VM capped at a few vCPUs (SEEDSC_KVM_MAX_VCPUS): threads made at once
// each get a vCPU of their own until the cap, never one another's; and
// threads running and setting FP state at once over fewer vCPUs keep
// their own FP state; and a kick goes only to a thread running guest code.
// Skips where /dev/kvm is unusable.
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "platform/kvm/kvm_address_space.h"
#include "platform/kvm/kvm_probe.h"
#include "platform/platform.h"
#include "platform/test_guest.h"

namespace seedvisor::platform::kvm {
namespace {

constexpr uint64_t kCode = 0x400000;
constexpr uint64_t kData = 0x500000;
constexpr uint64_t kStack = 0x600000;
constexpr size_t kXmm0 = 160, kXmm1 = 176;  // in the FXSAVE area

// The guest: adds xmm1 to xmm0 (bytewise), stores xmm0 at rbx, makes
// getppid(), again and again. Its FP state changes at every run, so a
// stale copy of it anywhere shows.
constexpr uint8_t kGuest[] = {
    0x66, 0x0f, 0xfc, 0xc1,        // paddb %xmm1, %xmm0
    0x0f, 0x11, 0x03,              // movups %xmm0, (%rbx)
    0xb8, 0x6e, 0x00, 0x00, 0x00,  // mov $110 (getppid), %eax
    0x0f, 0x05,                    // syscall
    0xeb, 0xf0,                    // jmp back to the paddb
};
// At kCode + kSpinOff, a guest that runs until it is kicked.
constexpr uint64_t kSpinOff = 0x80;
constexpr uint8_t kSpin[] = {0xeb, 0xfe};  // jmp .

class KvmVcpusTest : public ::testing::Test {
 protected:
  // A platform whose VMs have at most `vcpus` vCPUs, an address space with
  // the guest mapped, and a context on its initial thread.
  void Start(int vcpus) {
    absl::StatusOr<KvmHost> h = ProbeKvm();
    if (!h.ok()) GTEST_SKIP() << h.status().message();
    setenv("SEEDSC_KVM_MAX_VCPUS", std::to_string(vcpus).c_str(), 1);
    TestGuest g;
    MakeTestGuest("kvm", kCode, kGuest, sizeof(kGuest), &g);
    unsetenv("SEEDSC_KVM_MAX_VCPUS");
    ASSERT_FALSE(HasFatalFailure());
    platform_ = std::move(g.platform);
    as_ = std::move(g.as);
    first_ = std::move(g.ctx);
    const int rw = PROT_READ | PROT_WRITE, flags = MAP_PRIVATE | MAP_ANONYMOUS;
    ASSERT_TRUE(as_->Map(UserAddr(kData), kPageSize, rw, flags, -1, 0).ok());
    ASSERT_TRUE(as_->Map(UserAddr(kStack), kPageSize, rw, flags, -1, 0).ok());
  }

  // `n` more threads of the address space, attached at once (each from its
  // own host thread, all released together), in `out`; then each host
  // thread runs `body` with its thread's index and context, if given.
  void AttachAtOnce(int n, std::vector<std::unique_ptr<Context>>& out,
                    std::function<void(int, Context&)> body = nullptr) {
    std::vector<ThreadHandle> handles;
    for (int i = 0; i < n; ++i) {
      Result<ThreadHandle> t = first_->NewThread();
      ASSERT_TRUE(t.ok());
      handles.push_back(*t);
    }
    out.resize(n);
    std::atomic<int> ready{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i) {
      ts.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < n) {
        }
        auto c = platform_->Attach(as_, handles[i]);
        if (!c.ok()) return;
        out[i] = std::move(*c);
        if (body) body(i, *out[i]);
      });
    }
    for (std::thread& t : ts) t.join();
    for (int i = 0; i < n; ++i) ASSERT_NE(out[i], nullptr) << "thread " << i;
  }

  static int VcpuOf(const Context& c) {
    return dynamic_cast<const KvmContext&>(c).last_vcpu();
  }

  std::unique_ptr<Platform> platform_;
  std::shared_ptr<AddressSpace> as_;
  std::unique_ptr<Context> first_;
};

// Create() decides whether a thread gets a vCPU of its own and takes it in
// one step: of threads made at once, exactly as many as the cap leaves get
// one, each a different one. (Deciding, then taking, under two locks let
// two threads both decide "own", and the second then took a vCPU the
// other had just made.)
TEST_F(KvmVcpusTest, ThreadsMadeAtOnceGetDistinctVcpusUpToTheCap) {
  constexpr int kCap = 4, kRounds = 8, kThreads = 10;
  Start(kCap);
  if (IsSkipped() || HasFatalFailure()) return;
  // Each round, a new address space of the same platform: a new VM.
  for (int round = 0; round < kRounds; ++round) {
    if (round > 0) {
      first_.reset();
      auto as = platform_->NewAddressSpace();
      ASSERT_TRUE(as.ok()) << as.status();
      as_ = *as;
      auto ctx = platform_->Attach(as_, as_->initial_thread());
      ASSERT_TRUE(ctx.ok()) << ctx.status();
      first_ = std::move(*ctx);
    }
    ASSERT_EQ(VcpuOf(*first_), 0);
    std::vector<std::unique_ptr<Context>> ctxs;
    AttachAtOnce(kThreads, ctxs);
    std::multiset<int> got;
    for (const auto& c : ctxs) {
      if (VcpuOf(*c) >= 0) got.insert(VcpuOf(*c));
    }
    EXPECT_EQ(got, (std::multiset<int>{1, 2, 3})) << "round " << round;
  }
}

// FP state set, run and read by threads at once, six (and the idle first)
// over two vCPUs: each run's guest continues from its own thread's xmm0,
// and each GetFpState returns it.
TEST_F(KvmVcpusTest, ThreadsSharingVcpusKeepTheirOwnFpState) {
  constexpr int kThreads = 6, kRuns = 150;
  Start(2);
  if (IsSkipped() || HasFatalFailure()) return;
  std::atomic<int> bad_runs{0}, bad_gets{0}, failures{0};
  std::vector<std::unique_ptr<Context>> ctxs;
  AttachAtOnce(kThreads, ctxs, [&](int i, Context& ctx) {
    std::vector<uint8_t> image(FpState::HostSize(), 0);
    FpState().CopyTo(image.data(), image.size(), FpState::HostFeatures());
    std::memset(image.data() + kXmm1, 1, 16);
    uint8_t xmm0[16];  // what the guest's xmm0 holds
    const uint64_t out = kData + 64 * static_cast<uint64_t>(i);
    Registers r{};
    r.rip = kCode, r.rsp = kStack + kPageSize, r.rbx = out;
    r.cs = 0x33, r.ss = 0x2b, r.eflags = 0x202;
    r.orig_rax = static_cast<uint64_t>(-1);
    for (int run = 0; run < kRuns; ++run) {
      // A new xmm0 now and then; between, the state stays where the last
      // run left it (in a vCPU, or moved out by another thread's run).
      if (run % 3 == 0) {
        for (int b = 0; b < 16; ++b) xmm0[b] = static_cast<uint8_t>(0x40 + 16 * i + b + run);
        std::memcpy(image.data() + kXmm0, xmm0, 16);
        FpState mine;
        mine.CopyFrom(image.data(), image.size(), FpState::HostFeatures());
        if (!ctx.SetFpState(mine).ok()) failures.fetch_add(1);
      }
      Stop s = ctx.Run(r);
      if (s.kind == StopKind::kInterrupt) {
        // Kicked: the guest may or may not have made its add. Run again
        // from the loop's start with what it holds.
        FpState got;
        if (!ctx.GetFpState(got).ok()) failures.fetch_add(1);
        std::memcpy(xmm0, got.data() + kXmm0, 16);
        r.rip = kCode;
        continue;
      }
      if (s.kind != StopKind::kSyscall) {
        failures.fetch_add(1);
        return;
      }
      for (uint8_t& b : xmm0) ++b;
      uint8_t seen[16];
      if (!as_->Read(UserAddr(out), seen, 16).ok()) failures.fetch_add(1);
      if (std::memcmp(seen, xmm0, 16) != 0) bad_runs.fetch_add(1);
      FpState got;
      if (!ctx.GetFpState(got).ok()) failures.fetch_add(1);
      if (std::memcmp(got.data() + kXmm0, xmm0, 16) != 0) bad_gets.fetch_add(1);
    }
  });
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(bad_runs.load(), 0) << "runs whose guest saw another thread's xmm0";
  EXPECT_EQ(bad_gets.load(), 0) << "GetFpState calls that returned another thread's xmm0";
}

// The first in line, after its wait, kicks a thread that runs guest code
// out of its vCPU, never one that holds a vCPU only to copy FP state out
// of it (GetFpState): that kick frees no vCPU, and stays pending until the
// copier's next run, which it spoils (an exit at once: StopKind::kInterrupt
// with no Interrupt() asked for). Two vCPUs: the first thread copies from
// vCPU 0 (its stub thread held in a ptrace stop meanwhile, so the copy
// lasts), a second spins in guest code on vCPU 1, a third waits for one.
TEST_F(KvmVcpusTest, KicksGoOnlyToThreadsInGuestCode) {
  Start(2);
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_TRUE(as_->WriteForce(UserAddr(kCode + kSpinOff), kSpin, sizeof(kSpin)).ok());
  std::vector<std::unique_ptr<Context>> spinner, waiter;
  AttachAtOnce(1, spinner);
  AttachAtOnce(1, waiter);
  ASSERT_EQ(VcpuOf(*spinner[0]), 1);
  ASSERT_EQ(VcpuOf(*waiter[0]), -1);
  auto regs = [](uint64_t rip, uint64_t out) {
    Registers r{};
    r.rip = rip, r.rsp = kStack + kPageSize, r.rbx = out;
    r.cs = 0x33, r.ss = 0x2b, r.eflags = 0x202;
    r.orig_rax = static_cast<uint64_t>(-1);
    return r;
  };
  Registers r0 = regs(kCode, kData);
  ASSERT_EQ(first_->Run(r0).kind, StopKind::kSyscall);  // its FP state is in vCPU 0 now
  // The first thread's stub thread stops: its GetFpState (below) holds
  // vCPU 0 and waits for its KVM_GET_XSAVE.
  const pid_t stub = first_->thread().host_tid;
  ASSERT_EQ(ptrace(PTRACE_SEIZE, stub, nullptr, nullptr), 0) << strerror(errno);
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, stub, nullptr, nullptr), 0) << strerror(errno);
  int status = 0;
  ASSERT_EQ(waitpid(stub, &status, __WALL), stub);
  // The spinner holds vCPU 1 until a kick.
  std::atomic<StopKind> spun{StopKind::kDead};
  std::thread spin([&] {
    Registers r = regs(kCode + kSpinOff, kData + 64);
    spun = spinner[0]->Run(r).kind;
  });
  std::atomic<bool> copied{false};
  std::thread copy([&] {
    FpState fp;
    EXPECT_TRUE(first_->GetFpState(fp).ok());
    copied = true;
  });
  absl::SleepFor(absl::Milliseconds(200));  // the copy holds vCPU 0 by now
  EXPECT_FALSE(copied.load()) << "the copy did not wait for the stopped stub thread";
  // The waiter gets a vCPU once a kick has sent the spinner out.
  Registers rw = regs(kCode, kData + 128);
  EXPECT_EQ(waiter[0]->Run(rw).kind, StopKind::kSyscall);
  // (Had the copy not held vCPU 0 yet, the waiter ran there and nobody
  // kicked the spinner: the test stops it rather than hang.)
  if (spun.load() == StopKind::kDead) spinner[0]->Interrupt();
  spin.join();
  EXPECT_EQ(ptrace(PTRACE_DETACH, stub, nullptr, nullptr), 0) << strerror(errno);
  copy.join();
  // Nobody kicked the copier: its next run makes its syscall.
  EXPECT_EQ(first_->Run(r0).kind, StopKind::kSyscall)
      << "the copier's run was cut short by a kick meant for a runner";
}

}  // namespace
}  // namespace seedvisor::platform::kvm
