// The Platform contract, checked the same way on every platform: a guest
// program runs until a syscall or fault, memory copies honour protections,
// fork is copy-on-write, threads share memory, Interrupt() kicks a spinning
// guest, and a stub holds no host fd. Platform-specific checks follow at the
// end, each instantiated only for its platform.
#include "platform/platform.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "platform/kvm/kvm_probe.h"
#include "platform/stub/stub_address_space.h"
#include "platform/systrap/systrap_layout.h"
#include "platform/test_guest.h"
#include "seccomp/stub_policy.h"

namespace seedvisor::platform {
namespace {

constexpr uint64_t kCode = 0x400000;
constexpr uint64_t kData = 0x500000;

// Guest code: getppid(); then a load from 0x510000 (unmapped) to fault.
const uint8_t kProgram[] = {
    0xb8, 0x6e, 0x00, 0x00, 0x00,              // mov $110, %eax (getppid)
    0x0f, 0x05,                                // syscall
    0x48, 0xc7, 0xc0, 0x00, 0x00, 0x51, 0x00,  // mov $0x510000, %rax
    0x48, 0x8b, 0x00,                          // mov (%rax), %rax -> SIGSEGV
};

// A platform (named by the test parameter) with one address space holding
// kProgram at kCode and a data page at kData, and a context attached to it.
class PlatformTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "kvm") {
      // As every kvm test: a host without a usable /dev/kvm skips, saying why.
      if (auto h = kvm::ProbeKvm(); !h.ok()) GTEST_SKIP() << h.status().message();
    }
    TestGuest g;
    ASSERT_NO_FATAL_FAILURE(MakeTestGuest(GetParam(), kCode, kProgram, sizeof(kProgram), &g));
    platform_ = std::move(g.platform);
    as_ = std::move(g.as);
    ctx_ = std::move(g.ctx);
    ASSERT_TRUE(as_->Map(UserAddr(kData), kPageSize, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                    .ok());
  }

  Registers Entry() {
    Registers r{};
    r.rip = kCode;
    r.rsp = kData + kPageSize;
    r.cs = 0x33;
    r.ss = 0x2b;
    r.eflags = 0x202;
    r.orig_rax = static_cast<uint64_t>(-1);
    return r;
  }

  std::unique_ptr<Platform> platform_;
  std::shared_ptr<AddressSpace> as_;
  std::unique_ptr<Context> ctx_;
};

TEST_P(PlatformTest, SyscallThenFault) {
  Registers r = Entry();
  Stop s = ctx_->Run(r);
  ASSERT_EQ(s.kind, StopKind::kSyscall);
  EXPECT_EQ(r.orig_rax, static_cast<uint64_t>(SYS_getppid));
  EXPECT_EQ(r.rip, kCode + 7);
  r.rax = 1;
  s = ctx_->Run(r);
  ASSERT_EQ(s.kind, StopKind::kFault);
  EXPECT_EQ(s.info.si_signo, SIGSEGV);
  EXPECT_EQ(s.info.si_code, SEGV_MAPERR);
  EXPECT_EQ(reinterpret_cast<uint64_t>(s.info.si_addr), 0x510000u);
}

TEST_P(PlatformTest, MemoryCopiesHonourProtection) {
  const char msg[] = "hello";
  ASSERT_TRUE(as_->Write(UserAddr(kData), msg, sizeof(msg)).ok());
  char buf[sizeof(msg)] = {};
  auto n = as_->Read(UserAddr(kData), buf, sizeof(buf));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, sizeof(msg));
  EXPECT_STREQ(buf, "hello");
  // The code page is read-only to ordinary copies.
  EXPECT_FALSE(as_->Write(UserAddr(kCode), msg, 1).ok());
  // A copy that runs off the end of the mapping stops at the boundary.
  char big[2 * kPageSize];
  auto partial = as_->Read(UserAddr(kData + kPageSize - 16), big, sizeof(big));
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(*partial, 16u);
  EXPECT_FALSE(as_->Read(UserAddr(kData + kPageSize), big, 1).ok());
}

TEST_P(PlatformTest, ForkIsCopyOnWrite) {
  const uint64_t v1 = 1, v2 = 2;
  ASSERT_TRUE(as_->Write(UserAddr(kData), &v1, sizeof(v1)).ok());
  auto child = ctx_->ForkAddressSpace();
  ASSERT_TRUE(child.ok());
  ASSERT_TRUE((*child)->Write(UserAddr(kData), &v2, sizeof(v2)).ok());
  uint64_t got = 0;
  ASSERT_TRUE(as_->Read(UserAddr(kData), &got, sizeof(got)).ok());
  EXPECT_EQ(got, 1u);
  ASSERT_TRUE((*child)->Read(UserAddr(kData), &got, sizeof(got)).ok());
  EXPECT_EQ(got, 2u);
}

TEST_P(PlatformTest, FileMappingAndUnmap) {
  int fd = memfd_create("t", 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "filedata", 8), 8);
  ASSERT_TRUE(as_->Map(UserAddr(0x600000), kPageSize, PROT_READ, MAP_SHARED, fd, 0).ok());
  char buf[9] = {};
  ASSERT_TRUE(as_->Read(UserAddr(0x600000), buf, 8).ok());
  EXPECT_STREQ(buf, "filedata");
  ASSERT_TRUE(as_->Unmap(UserAddr(0x600000), kPageSize).ok());
  EXPECT_FALSE(as_->Read(UserAddr(0x600000), buf, 1).ok());
  close(fd);
}

TEST_P(PlatformTest, ThreadsShareMemory) {
  auto t = ctx_->NewThread();
  ASSERT_TRUE(t.ok());
  // A context belongs to the host thread that attached it; use it there.
  std::thread th([&] {
    auto c = platform_->Attach(as_, *t);
    ASSERT_TRUE(c.ok()) << c.status();
    Registers r = Entry();
    Stop s = (*c)->Run(r);
    EXPECT_EQ(s.kind, StopKind::kSyscall);
    EXPECT_EQ(r.orig_rax, static_cast<uint64_t>(SYS_getppid));
  });
  th.join();
}

// A spinning guest (`jmp .`) is kicked back to the sentry by Interrupt().
TEST_P(PlatformTest, InterruptStopsASpinningGuest) {
  const uint8_t spin[] = {0xeb, 0xfe};
  ASSERT_TRUE(as_->WriteForce(UserAddr(kCode + 0x100), spin, sizeof(spin)).ok());
  Registers r = Entry();
  r.rip = kCode + 0x100;
  std::thread kicker([&] {
    usleep(50000);
    ctx_->Interrupt();
  });
  Stop s = ctx_->Run(r);
  kicker.join();
  EXPECT_EQ(s.kind, StopKind::kInterrupt);
  EXPECT_EQ(r.rip, kCode + 0x100);
}

// The guest's fs base survives a trip to the sentry.
TEST_P(PlatformTest, FsBaseIsTheGuests) {
  Registers r = Entry();
  r.fs_base = kData + 0x800;
  Stop s = ctx_->Run(r);
  ASSERT_EQ(s.kind, StopKind::kSyscall);
  EXPECT_EQ(r.fs_base, kData + 0x800);
}

// What the guest reads through %fs and %gs is at the bases the sentry gave
// it, across many trips to the sentry with host context switches between
// them (the sentry naps while host threads busy both CPUs, so the stub's host
// thread sleeps and another process runs where it ran), and after the sentry
// changes them. A kernel that does not let user space own the bases
// (systrap_layout.h UserFsgsbase) restores the one it knows at such a switch:
// a stub that wrote the base with WRFSBASE there loses it (seen: a PVM guest).
TEST_P(PlatformTest, FsAndGsBasesHoldAcrossHostSwitches) {
  // loop: mov $0x400000,%ecx; 1: loop 1b (a few ms in the guest, long enough
  //       to be switched out); mov %fs:0,%rdi; mov %gs:8,%rsi;
  //       mov $110,%eax; syscall; jmp loop
  const uint8_t code[] = {0xb9, 0x00, 0x00, 0x40, 0x00, 0xe2, 0xfe,
                          0x64, 0x48, 0x8b, 0x3c, 0x25, 0x00, 0x00, 0x00, 0x00,
                          0x65, 0x48, 0x8b, 0x34, 0x25, 0x08, 0x00, 0x00, 0x00,
                          0xb8, 0x6e, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xde};
  ASSERT_TRUE(as_->WriteForce(UserAddr(kCode + 0x300), code, sizeof(code)).ok());
  const uint64_t fs_a = kData + 0x800, fs_b = kData + 0x900, gs = kData + 0xa00;
  const uint64_t magic_a = 0xa11ce, magic_b = 0xb0b, magic_gs = 0x65;
  ASSERT_TRUE(as_->Write(UserAddr(fs_a), &magic_a, sizeof(magic_a)).ok());
  ASSERT_TRUE(as_->Write(UserAddr(fs_b), &magic_b, sizeof(magic_b)).ok());
  ASSERT_TRUE(as_->Write(UserAddr(gs + 8), &magic_gs, sizeof(magic_gs)).ok());
  std::atomic<bool> stop{false};
  std::vector<std::thread> busy;
  for (int i = 0; i < 3; ++i) {
    busy.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  }
  Registers r = Entry();
  r.rip = kCode + 0x300;
  r.gs_base = gs;
  int wrong = 0;
  for (int i = 0; i < 60; ++i) {
    const bool a = (i / 10) % 2 == 0;  // the sentry switches the FS base every 10 trips
    r.fs_base = a ? fs_a : fs_b;
    Stop s = ctx_->Run(r);
    ASSERT_EQ(s.kind, StopKind::kSyscall) << "trip " << i << ": the guest lost its FS or GS base";
    if (r.rdi != (a ? magic_a : magic_b) || r.rsi != magic_gs) {
      ADD_FAILURE() << "trip " << i << ": %fs:0 = " << std::hex << r.rdi << ", %gs:8 = " << r.rsi;
      if (++wrong > 3) break;
    }
    EXPECT_EQ(r.fs_base, a ? fs_a : fs_b);
    EXPECT_EQ(r.gs_base, gs);
    if (i % 4 == 0) usleep(1000);  // the stub's thread sleeps in its futex
  }
  stop = true;
  for (std::thread& t : busy) t.join();
}

// int3, ud2 and a division by zero come back as faults, and the guest goes on.
TEST_P(PlatformTest, TrapsComeBackAsFaults) {
  // int3; ud2; xor ecx,ecx; div ecx
  const uint8_t code[] = {0xcc, 0x0f, 0x0b, 0x31, 0xc9, 0xf7, 0xf1, 0x90};
  ASSERT_TRUE(as_->WriteForce(UserAddr(kCode + 0x200), code, sizeof(code)).ok());
  Registers r = Entry();
  r.rip = kCode + 0x200;
  Stop s = ctx_->Run(r);
  ASSERT_EQ(s.kind, StopKind::kFault);
  EXPECT_EQ(s.info.si_signo, SIGTRAP);
  EXPECT_EQ(r.rip, kCode + 0x201);
  s = ctx_->Run(r);
  ASSERT_EQ(s.kind, StopKind::kFault);
  EXPECT_EQ(s.info.si_signo, SIGILL);
  EXPECT_EQ(r.rip, kCode + 0x201);
  r.rip += 2;
  s = ctx_->Run(r);
  ASSERT_EQ(s.kind, StopKind::kFault);
  EXPECT_EQ(s.info.si_signo, SIGFPE);
}

// A kvm stub holds its KVM fds (/dev/kvm, its VM, its vCPUs: KVM serves
// only the process that made the VM) and nothing else.
TEST_P(PlatformTest, NoHostFdsInStubs) {
  std::string dir = "/proc/" + std::to_string(as_->host_pid()) + "/fd";
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char target[256] = {};
      readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
      const std::string t = target;
      const bool kvm = t == "/dev/kvm" || t == "anon_inode:kvm-vm" || t.rfind("anon_inode:kvm-vcpu:", 0) == 0;
      if (GetParam() == "kvm" && kvm) continue;
      ++n;
      ADD_FAILURE() << "stub fd " << e->d_name << " -> " << t;
    }
    closedir(d);
  }
  EXPECT_EQ(n, 0) << "a stub holds host file descriptors";
}

bool StubPlatform() {
  const std::string& p = ::testing::TestWithParam<std::string>::GetParam();
  return p == "systrap" || p == "ptrace";
}

// The fds of the stub process, by number, with their open flags.
std::map<int, int> StubFds(int pid) {
  std::map<int, int> fds;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream info("/proc/" + std::to_string(pid) + "/fdinfo/" + e->d_name);
      std::string key;
      int flags = -1;
      while (info >> key) {
        if (key == "flags:") {
          info >> std::oct >> flags;
          break;
        }
      }
      fds[std::atoi(e->d_name)] = flags;
    }
    closedir(d);
  }
  return fds;
}

// A new file under /tmp holding `text`, world-readable (what a stub may
// keep open: stub_policy.h), opened read-only: its fd (-1 on failure), its
// path in *path.
int WorldReadableFile(const std::string& text, std::string* path) {
  char name[] = "/tmp/platform_test.XXXXXX";
  const int fd = mkstemp(name);
  if (fd < 0) return -1;
  *path = name;
  const bool written = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       fchmod(fd, 0644) == 0;
  close(fd);
  return written ? open(name, O_RDONLY | O_CLOEXEC) : -1;
}

// A world-readable host file mapped through MapImmutableFile stays open in
// the stub, read-only, at the first kept fd (stub_policy.h), and mapping it
// again uses that fd; any other file is opened for the mapping only.
TEST_P(PlatformTest, ImmutableFilesAreKeptReadOnly) {
  if (!StubPlatform()) GTEST_SKIP() << "kept files are the stub platforms' (stub_policy.h)";
  std::string path;
  const int ro = WorldReadableFile("libdata!", &path);
  ASSERT_GE(ro, 0);
  ASSERT_TRUE(as_->MapImmutableFile(UserAddr(0x600000), kPageSize, PROT_READ, MAP_PRIVATE, ro, 0)
                  .ok());
  std::map<int, int> fds = StubFds(as_->host_pid());
  ASSERT_EQ(fds.size(), 1u);
  EXPECT_EQ(fds.begin()->first, seccomp::kStubKeptFdBase);
  EXPECT_EQ(fds.begin()->second & O_ACCMODE, O_RDONLY);
  // Again, elsewhere: the same kept fd, nothing new.
  ASSERT_TRUE(as_->MapImmutableFile(UserAddr(0x700000), kPageSize, PROT_READ, MAP_PRIVATE, ro, 0)
                  .ok());
  EXPECT_EQ(StubFds(as_->host_pid()), fds);
  char buf[9] = {};
  ASSERT_TRUE(as_->Read(UserAddr(0x700000), buf, 8).ok());
  EXPECT_STREQ(buf, "libdata!");
  // Not world-readable: mapped, never kept.
  ASSERT_EQ(fchmod(ro, 0600), 0);
  int other = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(other, 0);
  ASSERT_TRUE(as_->MapImmutableFile(UserAddr(0x800000), kPageSize, PROT_READ, MAP_PRIVATE, other,
                                    0)
                  .ok());
  ASSERT_TRUE(as_->Read(UserAddr(0x800000), buf, 8).ok());
  EXPECT_STREQ(buf, "libdata!");
  EXPECT_EQ(StubFds(as_->host_pid()), fds);
  close(other);
  close(ro);
  unlink(path.c_str());
}

// More kept files than kept fds: the least recently used is replaced, and
// every mapping still shows its own file.
TEST_P(PlatformTest, KeptFilesAreReplacedLeastRecentlyUsedFirst) {
  if (!StubPlatform()) GTEST_SKIP() << "kept files are the stub platforms' (stub_policy.h)";
  std::vector<std::string> paths;
  std::vector<int> fds;
  const int n = seccomp::kStubKeptFds + 3;
  for (int i = 0; i < n; ++i) {
    paths.emplace_back();
    fds.push_back(WorldReadableFile("file" + std::to_string(i + 1000), &paths.back()));
    ASSERT_GE(fds.back(), 0);
  }
  auto addr = [](int i, int round) { return UserAddr(0x10000000 + (2 * i + round) * kPageSize); };
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(
          as_->MapImmutableFile(addr(i, round), kPageSize, PROT_READ, MAP_PRIVATE, fds[i], 0).ok())
          << i;
    }
  }
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < n; ++i) {
      char buf[9] = {};
      ASSERT_TRUE(as_->Read(addr(i, round), buf, 8).ok());
      EXPECT_EQ(std::string(buf), "file" + std::to_string(i + 1000)) << i << " " << round;
    }
  }
  EXPECT_EQ(StubFds(as_->host_pid()).size(), static_cast<size_t>(seccomp::kStubKeptFds));
  for (size_t i = 0; i < paths.size(); ++i) {
    close(fds[i]);
    unlink(paths[i].c_str());
  }
}

// The address space for an exec: empty (nothing of the old image), runs
// guest code, and leaves the old one as it was (a failed exec returns there).
TEST_P(PlatformTest, ExecContextIsEmptyAndLeavesTheOldImage) {
  const uint64_t v = 42;
  ASSERT_TRUE(as_->Write(UserAddr(kData), &v, sizeof(v)).ok());
  auto exec = platform_->NewExecContext(ctx_.get());
  ASSERT_TRUE(exec.ok()) << exec.status();
  AddressSpace& as = *exec->as;
  EXPECT_EQ(&exec->ctx->address_space(), &as);
  EXPECT_NE(as.host_pid(), as_->host_pid());
  uint64_t got = 0;
  EXPECT_FALSE(as.ReadForce(UserAddr(kData), &got, sizeof(got)).ok());
  EXPECT_FALSE(as.ReadForce(UserAddr(kCode), &got, sizeof(got)).ok());
  // A new image runs there.
  ASSERT_TRUE(
      as.Map(UserAddr(kCode), kPageSize, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
          .ok());
  ASSERT_TRUE(as.WriteForce(UserAddr(kCode), kProgram, sizeof(kProgram)).ok());
  ASSERT_TRUE(
      as.Map(UserAddr(kData), kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
          .ok());
  Registers r = Entry();
  Stop s = exec->ctx->Run(r);
  ASSERT_EQ(s.kind, StopKind::kSyscall);
  EXPECT_EQ(r.orig_rax, static_cast<uint64_t>(SYS_getppid));
  ASSERT_TRUE(as.Read(UserAddr(kData), &got, sizeof(got)).ok());
  EXPECT_EQ(got, 0u);
  // The old image is untouched and still runs.
  ASSERT_TRUE(as_->Read(UserAddr(kData), &got, sizeof(got)).ok());
  EXPECT_EQ(got, 42u);
  r = Entry();
  s = ctx_->Run(r);
  ASSERT_EQ(s.kind, StopKind::kSyscall);
  EXPECT_EQ(r.orig_rax, static_cast<uint64_t>(SYS_getppid));
}

// A world-readable file that an address space keeps (above) is not opened
// again in its fork's stub or in the stub of an exec's new image (ld.so,
// libc, ... of the second exec of a program): both inherit the kept fd and
// know it. A file kept nowhere is still opened.
TEST_P(PlatformTest, ForkAndExecReuseTheKeptFiles) {
  if (!StubPlatform()) GTEST_SKIP() << "kept files are the stub platforms' (stub_policy.h)";
  auto opened = [](AddressSpace& as) {
    return dynamic_cast<stub::StubAddressSpace&>(as).files_opened();
  };
  std::string path;
  const int ro = WorldReadableFile("libdata!", &path);
  ASSERT_GE(ro, 0);
  ASSERT_TRUE(as_->MapImmutableFile(UserAddr(0x600000), kPageSize, PROT_READ, MAP_PRIVATE, ro, 0)
                  .ok());
  EXPECT_EQ(opened(*as_), 1u);
  auto check = [&](AddressSpace& as, const char* what) {
    ASSERT_TRUE(as.MapImmutableFile(UserAddr(0x700000), kPageSize, PROT_READ, MAP_PRIVATE, ro, 0)
                    .ok())
        << what;
    char buf[9] = {};
    ASSERT_TRUE(as.Read(UserAddr(0x700000), buf, 8).ok()) << what;
    EXPECT_STREQ(buf, "libdata!") << what;
    EXPECT_EQ(opened(as), 0u) << what << ": the kept file was opened again";
    // Not world-readable: never kept, so opened for its mapping.
    char other_path[] = "/tmp/platform_test.XXXXXX";
    const int other = mkstemp(other_path);
    ASSERT_GE(other, 0);
    ASSERT_EQ(write(other, "private!", 8), 8);
    ASSERT_TRUE(
        as.MapImmutableFile(UserAddr(0x800000), kPageSize, PROT_READ, MAP_PRIVATE, other, 0).ok())
        << what;
    ASSERT_TRUE(as.Read(UserAddr(0x800000), buf, 8).ok()) << what;
    EXPECT_STREQ(buf, "private!") << what;
    EXPECT_EQ(opened(as), 1u) << what;
    close(other);
    unlink(other_path);
  };
  {
    auto child = ctx_->ForkAddressSpace();
    ASSERT_TRUE(child.ok());
    auto child_ctx = platform_->Attach(*child, (*child)->initial_thread());
    ASSERT_TRUE(child_ctx.ok()) << child_ctx.status();
    check(**child, "fork");
  }
  {
    auto exec = platform_->NewExecContext(ctx_.get());
    ASSERT_TRUE(exec.ok()) << exec.status();
    check(*exec->as, "exec");
  }
  close(ro);
  unlink(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(AllPlatforms, PlatformTest, ::testing::ValuesIn([] {
                           std::vector<std::string> names;
                           for (std::string_view n : PlatformNames()) names.emplace_back(n);
                           return names;
                         }()),
                         [](const auto& info) { return info.param; });

// ---- systrap only: the guest shares its address space with the stub ----

using SystrapTest = PlatformTest;

// A guest that jumps to the stub's syscall instruction with a call the stub
// filter does not allow kills its own stub, nothing else.
TEST_P(SystrapTest, JumpIntoStubKillsOnlyTheStub) {
  Registers r = Entry();
  r.rip = 0x7fffe00000e8 + 0x20;  // the syscall gadget (entry + 0x20)
  r.rax = SYS_getpid;
  Stop s = ctx_->Run(r);
  EXPECT_EQ(s.kind, StopKind::kDead);
}

// The shared region lives in the guest's address space. A guest that forges
// an event with bogus frame pointers in its slot gets its context declared
// dead; the sentry never follows the pointers.
TEST_P(SystrapTest, ForgedEventIsRejected) {
  const uint8_t code[] = {
      0x48, 0xb8, 0x00, 0x80, 0x00, 0xc0, 0xff, 0x7f, 0x00, 0x00,  // movabs $slot1, %rax
      0x48, 0xc7, 0x40, 0x08, 0xff, 0xff, 0xff, 0xff,              // movq $-1, 8(%rax)
      0x48, 0xc7, 0x40, 0x10, 0xff, 0xff, 0xff, 0xff,              // movq $-1, 16(%rax)
      0xc7, 0x00, 0x01, 0x00, 0x00, 0x00,                          // movl $1, (%rax)
      0xeb, 0xfe,                                                  // jmp .
  };
  ASSERT_TRUE(as_->WriteForce(UserAddr(kCode + 0x300), code, sizeof(code)).ok());
  Registers r = Entry();
  r.rip = kCode + 0x300;
  Stop s = ctx_->Run(r);
  EXPECT_EQ(s.kind, StopKind::kDead);
}

INSTANTIATE_TEST_SUITE_P(Systrap, SystrapTest, ::testing::Values("systrap"));

// ---- systrap with syscall-site patching (platform/systrap/PATCHING.md) ----

// Guest code: a loop that calls a getppid() site, stores each result and
// spins a little (so that kicks land in guest code too).
//   loop (kLoop):  call site_fn; movabs %rax,kResult; mov $3000,%ecx;
//                  loop .; jmp loop
//   site_fn:       mov $110,%eax; syscall; ret
constexpr uint64_t kLoop = kCode + 0x400;
constexpr uint64_t kSiteFn = kCode + 0x500;
constexpr uint64_t kResult = kData + 0x100;
constexpr uint8_t kGetppidSite[] = {0xb8, 0x6e, 0x00, 0x00, 0x00, 0x0f, 0x05};

class SystrapPatchTest : public PlatformTest {
 protected:
  void SetUp() override {
    if (!systrap::UserFsgsbase()) {
      GTEST_SKIP() << "no syscall-site patching where the host kernel keeps user space from "
                      "FSGSBASE (the fast path finds its slot through GS)";
    }
    setenv("SEEDVISOR_SYSTRAP_PATCH", "1", 1);  // read when the platform starts
    PlatformTest::SetUp();
    unsetenv("SEEDVISOR_SYSTRAP_PATCH");
    if (HasFatalFailure()) return;
    std::vector<uint8_t> loop = {0xe8, 0, 0, 0, 0, 0x48, 0xa3};  // call rel32; movabs %rax,abs64
    const int32_t rel = static_cast<int32_t>(kSiteFn - (kLoop + 5));
    std::memcpy(&loop[1], &rel, 4);
    for (int i = 0; i < 8; ++i) loop.push_back(static_cast<uint8_t>(kResult >> (8 * i)));
    for (uint8_t b : {0xb9, 0xb8, 0x0b, 0x00, 0x00, 0xe2, 0xfe}) loop.push_back(b);
    const int8_t back = static_cast<int8_t>(-(static_cast<int>(loop.size()) + 2));
    loop.push_back(0xeb);  // jmp loop
    loop.push_back(static_cast<uint8_t>(back));
    ASSERT_TRUE(as_->WriteForce(UserAddr(kLoop), loop.data(), loop.size()).ok());
    std::vector<uint8_t> fn(std::begin(kGetppidSite), std::end(kGetppidSite));
    fn.push_back(0xc3);  // ret
    ASSERT_TRUE(as_->WriteForce(UserAddr(kSiteFn), fn.data(), fn.size()).ok());
  }

  Registers LoopEntry() {
    Registers r = Entry();
    r.rip = kLoop;
    r.rsp = kData + kPageSize - 0x100;
    return r;
  }

  std::array<uint8_t, 7> SiteBytes() {
    std::array<uint8_t, 7> b{};
    EXPECT_TRUE(as_->ReadForce(UserAddr(kSiteFn), b.data(), b.size()).ok());
    return b;
  }
  bool Patched() { return SiteBytes()[0] == 0xff; }

  // Runs the loop's next syscall with `answer` as the last one's result.
  void NextGetppid(Context& ctx, Registers& r, uint64_t answer) {
    r.rax = answer;
    Stop s = ctx.Run(r);
    ASSERT_EQ(s.kind, StopKind::kSyscall);
    ASSERT_EQ(r.orig_rax, static_cast<uint64_t>(SYS_getppid));
    ASSERT_EQ(r.rip, kSiteFn + 7);
    ASSERT_EQ(r.rcx, r.rip);  // as `syscall` leaves them
    ASSERT_EQ(r.r11, r.eflags);
    ASSERT_EQ(r.rsp, kData + kPageSize - 0x108);  // the call's return address only
  }
};

// A host file that not everyone may read goes through MapImmutableFile's
// plain mapping (mapped, never kept). With patching on, that mapping once
// went back through SystrapAddressSpace::Map, which takes the site lock
// SystrapAddressSpace::MapImmutableFile already held: the task hung for
// good, unkillable (a root guest mapping a 0600 host file privately, as
// trinity run as root does with /sys files). Here abseil's deadlock check
// (on in tests) ends the old code at once; without it, the test times out.
TEST_P(SystrapPatchTest, AFileOnlyItsOwnerReadsIsMappedWithoutAHang) {
  std::string path;
  const int fd = WorldReadableFile("private!", &path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fchmod(fd, 0600), 0);
  const std::map<int, int> fds = StubFds(as_->host_pid());
  ASSERT_TRUE(
      as_->MapImmutableFile(UserAddr(0x900000), kPageSize, PROT_READ, MAP_PRIVATE, fd, 0).ok());
  char buf[9] = {};
  ASSERT_TRUE(as_->Read(UserAddr(0x900000), buf, 8).ok());
  EXPECT_STREQ(buf, "private!");
  EXPECT_EQ(StubFds(as_->host_pid()), fds);  // not kept
  close(fd);
  unlink(path.c_str());
}

// A site that trapped twice becomes a jump; later calls come back through
// the fast entry exactly as a trapped one (rip, rcx, r11, the other
// registers, the result), and nothing below the guest's rsp is written.
TEST_P(SystrapPatchTest, AHotSiteIsPatchedAndBehavesTheSame) {
  Registers r = LoopEntry();
  r.rbx = 0x1111, r.rdx = 0x2222, r.rsi = 0x3333, r.rdi = 0x4444, r.rbp = 0x5555;
  r.r8 = 8, r.r9 = 9, r.r10 = 10, r.r12 = 12, r.r13 = 13, r.r14 = 14, r.r15 = 15;
  r.fs_base = kData + 0x800;
  std::vector<uint8_t> canary(0x80);
  for (size_t i = 0; i < canary.size(); ++i) canary[i] = static_cast<uint8_t>(i * 7 + 1);
  const uint64_t red_zone = kData + kPageSize - 0x108 - canary.size();
  ASSERT_TRUE(as_->Write(UserAddr(red_zone), canary.data(), canary.size()).ok());
  EXPECT_FALSE(Patched());
  for (uint64_t i = 0; i < 50; ++i) {
    NextGetppid(*ctx_, r, 1000 + i);
    if (i > 0) {
      uint64_t stored = 0;
      ASSERT_TRUE(as_->Read(UserAddr(kResult), &stored, sizeof(stored)).ok());
      EXPECT_EQ(stored, 1000 + i);
    }
    EXPECT_EQ(r.rbx, 0x1111u);
    EXPECT_EQ(r.rdx, 0x2222u);
    EXPECT_EQ(r.rsi, 0x3333u);
    EXPECT_EQ(r.rdi, 0x4444u);
    EXPECT_EQ(r.rbp, 0x5555u);
    EXPECT_EQ(r.r8 + r.r9 + r.r10 + r.r12 + r.r13 + r.r14 + r.r15, 81u);
    EXPECT_EQ(r.fs_base, kData + 0x800);
    EXPECT_EQ(r.gs_base, 0u);
    if (i == 1) {
      EXPECT_TRUE(Patched()) << "patched on the second trap";
    }
  }
  std::vector<uint8_t> after(canary.size());
  ASSERT_TRUE(as_->Read(UserAddr(red_zone), after.data(), after.size()).ok());
  EXPECT_EQ(after, canary);
  const std::array<uint8_t, 7> b = SiteBytes();
  EXPECT_EQ(b[0], 0xff);
  EXPECT_EQ(b[1], 0x24);
  EXPECT_EQ(b[2], 0x25);
  EXPECT_EQ(b[5], 0x06);  // where `syscall` was: an invalid opcode
}

// FP state set by the sentry at a fast event reaches the guest, and the
// guest's own comes back unchanged.
TEST_P(SystrapPatchTest, FpStateCrossesTheFastPath) {
  Registers r = LoopEntry();
  for (uint64_t i = 0; i < 3; ++i) NextGetppid(*ctx_, r, i);
  ASSERT_TRUE(Patched());
  FpState fp;
  ASSERT_TRUE(ctx_->GetFpState(fp).ok());
  std::vector<uint8_t> image(fp.data(), fp.data() + fp.size());
  uint8_t xmm0[16];  // FXSAVE layout: xmm0 at 160
  for (int i = 0; i < 16; ++i) xmm0[i] = static_cast<uint8_t>(0xa0 + i);
  std::memcpy(image.data() + 160, xmm0, 16);
  FpState mine;
  mine.CopyFrom(image.data(), image.size(), FpState::HostFeatures());
  ASSERT_TRUE(ctx_->SetFpState(mine).ok());
  for (uint64_t i = 0; i < 3; ++i) {
    NextGetppid(*ctx_, r, i);
    FpState got;
    ASSERT_TRUE(ctx_->GetFpState(got).ok());
    EXPECT_EQ(std::memcmp(got.data() + 160, xmm0, 16), 0) << i;
  }
}

// Fork copies the patched text and the sentry's record of it: the child's
// calls come back through its own fast entry with the child's answers.
TEST_P(SystrapPatchTest, AForkKeepsThePatch) {
  Registers r = LoopEntry();
  for (uint64_t i = 0; i < 3; ++i) NextGetppid(*ctx_, r, i);
  ASSERT_TRUE(Patched());
  auto child = ctx_->ForkAddressSpace();
  ASSERT_TRUE(child.ok());
  std::thread th([&] {
    auto c = platform_->Attach(*child, (*child)->initial_thread());
    ASSERT_TRUE(c.ok()) << c.status();
    Registers cr = r;
    for (uint64_t i = 0; i < 20; ++i) NextGetppid(**c, cr, 7000 + i);
    uint64_t stored = 0;
    ASSERT_TRUE((*child)->Read(UserAddr(kResult), &stored, sizeof(stored)).ok());
    EXPECT_EQ(stored, 7019u);
    std::array<uint8_t, 7> b{};
    ASSERT_TRUE((*child)->ReadForce(UserAddr(kSiteFn), b.data(), b.size()).ok());
    EXPECT_EQ(b[0], 0xff);
  });
  th.join();
  for (uint64_t i = 0; i < 5; ++i) NextGetppid(*ctx_, r, 100 + i);
}

// A site the seed's guest trapped at once is patched as the seed prepares a
// sandbox fork: otherwise each fork, which copies the trap count, patched
// it at its own first trap there, on its guest's way (issue 9).
TEST_P(SystrapPatchTest, ASeedPatchesTheSitesItsGuestTrappedAtOnce) {
  Registers r = LoopEntry();
  NextGetppid(*ctx_, r, 1);
  ASSERT_FALSE(Patched()) << "one trap is only counted";
  const pid_t pgid = getpgrp();  // the copy's group (killed through its pidfd)
  ASSERT_TRUE(platform_->PrepareSeedFork(*ctx_, pgid, 1).ok());
  EXPECT_TRUE(Patched());
  platform_->FinishSeedFork(pgid, /*child_took_them=*/false);
  for (uint64_t i = 0; i < 3; ++i) NextGetppid(*ctx_, r, 10 + i);
  uint64_t stored = 0;
  ASSERT_TRUE(as_->Read(UserAddr(kResult), &stored, sizeof(stored)).ok());
  EXPECT_EQ(stored, 12u);
}

// A site whose `mov` holds another number than the one that trapped after
// it (its `syscall` was reached by a jump: the five bytes before it may be
// the tail of a longer instruction) is not patched when a seed prepares a
// fork either (review of c420951, which took the `mov`'s own number).
TEST_P(SystrapPatchTest, ASeedDoesNotPatchASiteWhoseMovIsNotTheTrappedNumber) {
  constexpr uint8_t kGetpidSite[] = {0xb8, 0x27, 0x00, 0x00, 0x00, 0x0f, 0x05};
  ASSERT_TRUE(as_->WriteForce(UserAddr(kSiteFn), kGetpidSite, sizeof(kGetpidSite)).ok());
  Registers r = LoopEntry();
  r.rip = kSiteFn + 5;  // straight to the `syscall`, getppid in rax
  r.rax = SYS_getppid;
  Stop s = ctx_->Run(r);
  ASSERT_EQ(s.kind, StopKind::kSyscall);
  ASSERT_EQ(r.orig_rax, static_cast<uint64_t>(SYS_getppid));
  ASSERT_EQ(r.rip, kSiteFn + 7);
  const pid_t pgid = getpgrp();
  ASSERT_TRUE(platform_->PrepareSeedFork(*ctx_, pgid, 1).ok());
  EXPECT_FALSE(Patched());
  platform_->FinishSeedFork(pgid, /*child_took_them=*/false);
}

// Made writable, the text shows its own bytes again (a guest that patches
// or checksums itself); made executable again, the site is patched anew.
TEST_P(SystrapPatchTest, WritableTextIsUnpatched) {
  Registers r = LoopEntry();
  for (uint64_t i = 0; i < 3; ++i) NextGetppid(*ctx_, r, i);
  ASSERT_TRUE(Patched());
  ASSERT_TRUE(as_->Protect(UserAddr(kCode), kPageSize, PROT_READ | PROT_WRITE | PROT_EXEC).ok());
  const std::array<uint8_t, 7> b = SiteBytes();
  EXPECT_TRUE(std::equal(b.begin(), b.end(), std::begin(kGetppidSite)));
  for (uint64_t i = 0; i < 3; ++i) NextGetppid(*ctx_, r, i);
  EXPECT_FALSE(Patched()) << "never patched while writable";
  ASSERT_TRUE(as_->Protect(UserAddr(kCode), kPageSize, PROT_READ | PROT_EXEC).ok());
  for (uint64_t i = 0; i < 3; ++i) NextGetppid(*ctx_, r, i);
  EXPECT_TRUE(Patched());
}

// Kicks landing anywhere (guest code, the slot, the fast entry and exit)
// come back as interrupts at states the unpatched code can be in, or are
// absorbed by the syscall in flight; the loop never loses a result.
TEST_P(SystrapPatchTest, KicksDuringFastCallsLeaveConsistentStates) {
  Registers r = LoopEntry();
  for (uint64_t i = 0; i < 3; ++i) NextGetppid(*ctx_, r, i);
  ASSERT_TRUE(Patched());
  std::atomic<bool> stop{false};
  std::thread kicker([&] {
    while (!stop.load()) {
      ctx_->Interrupt();
      usleep(20);
    }
  });
  int syscalls = 0, interrupts = 0;
  uint64_t next = 5000;
  uint64_t answer = next;
  r.rax = answer;
  while (syscalls < 3000 || (interrupts < 20 && syscalls < 200000)) {
    Stop s = ctx_->Run(r);
    if (s.kind == StopKind::kInterrupt) {
      ++interrupts;
      // Inside the loop's code, at the site, or at its `syscall` with the
      // number in rax (the slot's second instruction).
      const bool in_code = (r.rip >= kLoop && r.rip < kLoop + 0x20) ||
                           (r.rip >= kSiteFn && r.rip <= kSiteFn + 8);
      ASSERT_TRUE(in_code) << std::hex << r.rip;
      if (r.rip == kSiteFn + 5) {
        ASSERT_EQ(r.rax, static_cast<uint64_t>(SYS_getppid));
      }
      continue;
    }
    ASSERT_EQ(s.kind, StopKind::kSyscall);
    ASSERT_EQ(r.rip, kSiteFn + 7);
    ASSERT_EQ(r.orig_rax, static_cast<uint64_t>(SYS_getppid));
    if (syscalls > 0) {
      uint64_t stored = 0;
      ASSERT_TRUE(as_->Read(UserAddr(kResult), &stored, sizeof(stored)).ok());
      ASSERT_EQ(stored, answer);
    }
    ++syscalls;
    answer = ++next;
    r.rax = answer;
  }
  stop = true;
  kicker.join();
  EXPECT_GT(interrupts, 0);
}

INSTANTIATE_TEST_SUITE_P(Systrap, SystrapPatchTest, ::testing::Values("systrap"));

}  // namespace
}  // namespace seedvisor::platform
