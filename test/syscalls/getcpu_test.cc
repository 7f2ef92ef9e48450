// getcpu(2) and its user-space forms after sched_setaffinity(2): pinned to
// one CPU, a thread is told that CPU by the syscall, by the vDSO's
// __vdso_getcpu (RDPID/RDTSCP or the GDT's per-CPU segment limit), by
// RDTSCP's TSC_AUX directly and by glibc's sched_getcpu (rseq's cpu_id where
// glibc registered an area). LTP getcpu01 pins itself to its highest CPU.
#include <cpuid.h>
#include <elf.h>
#include <sched.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <x86intrin.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

using VdsoGetcpu = long (*)(unsigned* cpu, unsigned* node, void* cache);

// `name` in the vDSO's dynamic symbol table, or null.
void* VdsoSymbol(const char* name) {
  const uintptr_t base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) return nullptr;
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  const auto* ph = reinterpret_cast<const Elf64_Phdr*>(base + eh->e_phoff);
  uintptr_t bias = base;  // load address minus the first PT_LOAD's vaddr
  for (int i = 0; i < eh->e_phnum; ++i) {
    if (ph[i].p_type == PT_LOAD) {
      bias = base - ph[i].p_vaddr;
      break;
    }
  }
  const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_DYNSYM) continue;
    const auto* syms = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
    const char* strs = reinterpret_cast<const char*>(base + sh[sh[i].sh_link].sh_offset);
    for (size_t j = 0; j < sh[i].sh_size / sizeof(Elf64_Sym); ++j) {
      if (strcmp(strs + syms[j].st_name, name) == 0 && syms[j].st_value != 0) {
        return reinterpret_cast<void*>(bias + syms[j].st_value);
      }
    }
  }
  return nullptr;
}

bool HasRdtscp() {
  unsigned a, b, c, d;
  return __get_cpuid(0x80000001, &a, &b, &c, &d) && (d & (1u << 27));
}

// The CPUs this thread may run on.
std::vector<int> AllowedCpus(cpu_set_t* set) {
  CPU_ZERO(set);
  EXPECT_EQ(sched_getaffinity(0, sizeof(*set), set), 0) << ErrnoName(errno);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, set)) cpus.push_back(c);
  }
  return cpus;
}

TEST(GetcpuTest, EveryFormFollowsAffinity) {
  cpu_set_t allowed;
  const std::vector<int> cpus = AllowedCpus(&allowed);
  ASSERT_FALSE(cpus.empty());
  auto vdso_getcpu = reinterpret_cast<VdsoGetcpu>(VdsoSymbol("__vdso_getcpu"));
  ASSERT_NE(vdso_getcpu, nullptr) << "no __vdso_getcpu in the vDSO";
  const bool rdtscp = HasRdtscp();
  // Twice round: each move is to another CPU where there are two.
  for (int round = 0; round < 2; ++round) {
    for (int cpu : cpus) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0) << ErrnoName(errno);
      cpu_set_t got;
      ASSERT_EQ(sched_getaffinity(0, sizeof(got), &got), 0);
      EXPECT_TRUE(CPU_EQUAL(&got, &one)) << "cpu " << cpu;

      unsigned c = ~0u, node = ~0u;
      ASSERT_EQ(syscall(SYS_getcpu, &c, &node, nullptr), 0) << ErrnoName(errno);
      EXPECT_EQ(c, static_cast<unsigned>(cpu)) << "getcpu(2)";
      unsigned vc = ~0u, vnode = ~0u;
      ASSERT_EQ(vdso_getcpu(&vc, &vnode, nullptr), 0);
      EXPECT_EQ(vc, static_cast<unsigned>(cpu)) << "__vdso_getcpu";
      EXPECT_EQ(vnode, node) << "__vdso_getcpu's node";
      EXPECT_EQ(sched_getcpu(), cpu) << "sched_getcpu";
      if (rdtscp) {
        unsigned aux = ~0u;
        __rdtscp(&aux);
        EXPECT_EQ(aux & 0xfff, static_cast<unsigned>(cpu)) << "RDTSCP's TSC_AUX";
      }
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof(allowed), &allowed), 0);
}

// A thread made after the pin keeps it (clone copies the mask), and so does
// a child process, on the host thread that runs it too.
TEST(GetcpuTest, CloneAndForkKeepThePin) {
  cpu_set_t allowed;
  const std::vector<int> cpus = AllowedCpus(&allowed);
  ASSERT_FALSE(cpus.empty());
  const int cpu = cpus.back();
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0) << ErrnoName(errno);
  int status = RunInChild([cpu] {
    unsigned c = ~0u;
    if (syscall(SYS_getcpu, &c, nullptr, nullptr) != 0) return 1;
    if (c != static_cast<unsigned>(cpu)) return 2;
    if (sched_getcpu() != cpu) return 3;
    return 0;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  unsigned thread_cpu = ~0u;
  int thread_rseq_cpu = -1;
  std::thread([&] {
    syscall(SYS_getcpu, &thread_cpu, nullptr, nullptr);
    thread_rseq_cpu = sched_getcpu();
  }).join();
  EXPECT_EQ(thread_cpu, static_cast<unsigned>(cpu)) << "a new thread's getcpu(2)";
  EXPECT_EQ(thread_rseq_cpu, cpu) << "a new thread's sched_getcpu";
  ASSERT_EQ(sched_setaffinity(0, sizeof(allowed), &allowed), 0);
}

// The exec'd image of ExecKeepsThePin: its CPU must be GETCPU_TEST_PINNED.
TEST(GetcpuTest, ExecChild) {
  const char* want = getenv("GETCPU_TEST_PINNED");
  if (want == nullptr) GTEST_SKIP() << "only as ExecKeepsThePin's exec'd image";
  unsigned c = ~0u;
  ASSERT_EQ(syscall(SYS_getcpu, &c, nullptr, nullptr), 0);
  EXPECT_EQ(c, static_cast<unsigned>(atoi(want)));
  EXPECT_EQ(sched_getcpu(), atoi(want));
}

// execve(2) keeps the mask, and the new image's host thread (a new stub on
// the sandbox platforms) runs where it says.
TEST(GetcpuTest, ExecKeepsThePin) {
  cpu_set_t allowed;
  const std::vector<int> cpus = AllowedCpus(&allowed);
  ASSERT_FALSE(cpus.empty());
  const int cpu = cpus.back();
  int status = RunInChild([cpu] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) return 90;
    const std::string pinned = "GETCPU_TEST_PINNED=" + std::to_string(cpu);
    char filter[] = "--gtest_filter=GetcpuTest.ExecChild";
    char* argv[] = {const_cast<char*>("getcpu_test"), filter, nullptr};
    char* envp[] = {const_cast<char*>(pinned.c_str()), nullptr};
    execve("/proc/self/exe", argv, envp);
    return 91;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

}  // namespace
}  // namespace syscall_test
