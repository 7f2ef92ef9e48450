#include "sentry/fs/sys/sys.h"

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/base/cpus.h"
#include "sentry/fs/synth/synth.h"

namespace seedvisor::sentry {
namespace {

constexpr long kSysfsMagic = 0x62656572;  // SYSFS_MAGIC

std::shared_ptr<SynthDir> Dir() {
  auto d = std::make_shared<SynthDir>(0755);
  d->set_fs_magic(kSysfsMagic);
  return d;
}

std::shared_ptr<SynthFile> Text(std::function<std::string()> f) {
  auto file = SynthFile::Text(std::move(f));
  file->set_fs_magic(kSysfsMagic);
  return file;
}

// "3\n", "ff,ffffffff\n": a cpumask as node_read_cpumap() prints it
// (bitmap_print_to_pagebuf() of nr_cpu_ids bits, 32-bit groups).
std::string CpuMapText(const cpu_set_t& set) {
  int nbits = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) nbits = c + 1;
  }
  std::string out;
  for (int top = (nbits - 1) / 32 * 32; top >= 0; top -= 32) {
    uint32_t word = 0;
    for (int b = 0; b < 32 && top + b < nbits; ++b) {
      if (CPU_ISSET(top + b, &set)) word |= uint32_t{1} << b;
    }
    const int width = out.empty() ? (std::min(32, nbits - top) + 3) / 4 : 8;
    if (!out.empty()) out += ',';
    out += absl::StrFormat("%0*x", width, word);
  }
  return out + "\n";
}

// node0/meminfo: the sandbox's /proc/meminfo (the host's, hugetlb pool
// empty) in node_read_meminfo()'s form, since node 0 holds all of it.
std::string NodeMeminfoText() {
  std::map<std::string, uint64_t> kb;
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    char name[64];
    unsigned long long v;
    if (std::sscanf(line.c_str(), "%63[^:]: %llu", name, &v) == 2) kb[name] = v;
  }
  auto get = [&](const char* n) { return kb.count(n) ? kb[n] : uint64_t{0}; };
  std::string out;
  auto add = [&](const std::string& n, uint64_t v) {
    out += absl::StrFormat("Node 0 %-16s%8u kB\n", n + ":", v);
  };
  add("MemTotal", get("MemTotal"));
  add("MemFree", get("MemFree"));
  add("MemUsed", get("MemTotal") - std::min(get("MemTotal"), get("MemFree")));
  for (const char* n : {"SwapCached", "Active", "Inactive", "Active(anon)", "Inactive(anon)",
                        "Active(file)", "Inactive(file)", "Unevictable", "Mlocked", "Dirty",
                        "Writeback"}) {
    add(n, get(n));
  }
  // /proc/meminfo's Cached leaves out the swap cache and buffers.
  add("FilePages", get("Cached") + get("SwapCached") + get("Buffers"));
  for (const char* n : {"Mapped", "AnonPages", "Shmem", "KernelStack", "PageTables",
                        "SecPageTables", "NFS_Unstable", "Bounce", "WritebackTmp",
                        "KReclaimable", "Slab", "SReclaimable", "SUnreclaim", "AnonHugePages",
                        "ShmemHugePages", "ShmemPmdMapped", "FileHugePages", "FilePmdMapped"}) {
    add(n, get(n));
  }
  for (const char* n : {"HugePages_Total", "HugePages_Free", "HugePages_Surp"}) {
    out += absl::StrFormat("Node 0 %-16s %5u\n", absl::StrCat(n, ":"), 0);
  }
  return out;
}

// /sys/devices/system/node as a one-node machine has it: node 0 with every
// CPU of the sandbox and all of its memory (what libnuma and numactl read).
std::shared_ptr<SynthDir> NodeDir(const cpu_set_t& set) {
  auto node = Dir();
  for (const char* name : {"online", "possible", "has_cpu", "has_memory", "has_normal_memory"}) {
    node->Add(name, Text([] { return std::string("0\n"); }));
  }
  node->Add("has_generic_initiator", Text([] { return std::string("\n"); }));
  auto node0 = Dir();
  std::string list = CpuListText(set), map = CpuMapText(set);
  node0->Add("cpulist", Text([list] { return list; }));
  node0->Add("cpumap", Text([map] { return map; }));
  node0->Add("distance", Text([] { return std::string("10\n"); }));
  node0->Add("meminfo", Text(NodeMeminfoText));
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) {
      node0->Add(absl::StrCat("cpu", c), SynthSymlink::Fixed(absl::StrCat("../../cpu/cpu", c)));
    }
  }
  node->Add("node0", node0);
  return node;
}

}  // namespace

std::string CpuListText(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE;) {
    if (!CPU_ISSET(c, &set)) {
      ++c;
      continue;
    }
    int end = c;
    while (end + 1 < CPU_SETSIZE && CPU_ISSET(end + 1, &set)) ++end;
    if (!out.empty()) out += ',';
    absl::StrAppend(&out, c);
    if (end > c) absl::StrAppend(&out, "-", end);
    c = end + 1;
  }
  return out + "\n";
}

InodeRef NewSysFs() {
  const cpu_set_t& set = SandboxCpus().set;
  std::string list = CpuListText(set);
  auto cpu = Dir();
  // One list for all three: the sandbox's CPUs are all present, possible and
  // online (no hotplug inside it).
  for (const char* name : {"online", "possible", "present"}) {
    auto f = SynthFile::Text([list] { return list; });
    f->set_fs_magic(kSysfsMagic);
    cpu->Add(name, f);
  }
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    auto cpuN = Dir();
    cpuN->Add("node0", SynthSymlink::Fixed("../../node/node0"));
    cpu->Add(absl::StrCat("cpu", c), cpuN);
  }
  auto system = Dir();
  system->Add("cpu", cpu);
  system->Add("node", NodeDir(set));
  auto devices = Dir();
  devices->Add("system", system);
  auto fs = Dir();
  auto cgroup = Dir();
  cgroup->set_seek(SynthSeek::kSeqFile);  // cgroup's kernfs dirs: EINVAL, not sysfs's
  fs->Add("cgroup", cgroup);
  auto cls = Dir();
  cls->Add("net", Dir());
  auto root = Dir();
  root->Add("devices", devices);
  root->Add("fs", fs);
  root->Add("class", cls);
  root->Add("kernel", Dir());
  root->Add("firmware", Dir());
  // lseek: sysfs attributes have i_size 4096, its directories 0.
  root->SetSubtreeSeek(SynthSeek::kSizeZero, SynthSeek::kSysfsPage);
  return root;
}

}  // namespace seedvisor::sentry
