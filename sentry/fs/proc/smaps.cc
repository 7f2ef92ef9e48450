// /proc/PID/smaps and smaps_rollup (fs/proc/task_mmu.c): each VMA's maps
// line with its memory use, and the sum over all of them.
//
// The pages live in the host process that holds the address space, at the
// guest's addresses (every platform maps guest memory 1:1 there), so each
// VMA's use is the host's smaps for the same range. Where a host VMA spans
// more than the guest's (the host merged neighbours the sentry keeps apart)
// its counts are shared out by the pages present in each part.
#include <sys/mman.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {
namespace {

// The per-VMA counts smaps shows after Size, KernelPageSize and
// MMUPageSize, in its order (show_smap_vma_flags() comes last), in kB.
constexpr std::array<const char*, 20> kCounts = {
    "Rss",           "Pss",            "Pss_Dirty",      "Shared_Clean",   "Shared_Dirty",
    "Private_Clean", "Private_Dirty",  "Referenced",     "Anonymous",      "KSM",
    "LazyFree",      "AnonHugePages",  "ShmemPmdMapped", "FilePmdMapped",  "Shared_Hugetlb",
    "Private_Hugetlb", "Swap",         "SwapPss",        "Locked",         "THPeligible"};
constexpr size_t kRss = 0, kPss = 1, kPssDirty = 2, kAnonymous = 8, kLocked = 18, kThp = 19;
using Counts = std::array<uint64_t, kCounts.size()>;

struct HostVma {
  uint64_t start = 0, end = 0;
  Counts counts{};
};

std::vector<HostVma> ReadHostSmaps(int pid) {
  std::vector<HostVma> out;
  FILE* f = std::fopen(absl::StrCat("/proc/", pid, "/smaps").c_str(), "re");
  if (f == nullptr) return out;
  char line[512];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    unsigned long start, end;
    char name[64];
    unsigned long value;
    // A VMA's header ("start-end perms ..."); no count's name parses so.
    if (std::sscanf(line, "%lx-%lx ", &start, &end) == 2) {
      out.push_back({start, end, {}});
      continue;
    }
    if (out.empty() || std::sscanf(line, "%63[^:]: %lu", name, &value) != 2) continue;
    for (size_t i = 0; i < kCounts.size(); ++i) {
      if (std::strcmp(name, kCounts[i]) == 0) out.back().counts[i] = value;
    }
  }
  std::fclose(f);
  return out;
}

// The present pages of [start, end) in the host's page table, or -1 for
// a range too large to read entry by entry.
int64_t PresentPages(MM& mm, uint64_t start, uint64_t end) {
  constexpr uint64_t kMaxPages = 1 << 18;  // 1 GiB: 2 MiB of pagemap
  if ((end - start) / kPageSize > kMaxPages) return -1;
  constexpr uint64_t kPresent = 1ULL << 63;
  int64_t present = 0;
  uint64_t entries[512];
  for (uint64_t vpn = start / kPageSize; vpn < end / kPageSize;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(512, end / kPageSize - vpn));
    Result<size_t> got = mm.PagemapEntries(vpn, entries, want);
    if (!got.ok() || *got == 0) return -1;
    for (size_t i = 0; i < *got; ++i) present += (entries[i] & kPresent) ? 1 : 0;
    vpn += *got;
  }
  return present;
}

// The host's counts for [start, end). Where a host VMA spans more (the
// host merged neighbours the sentry keeps apart), its counts are shared
// out by the present pages each part has, or by size if that is unknown.
Counts HostCountsFor(MM& mm, const std::vector<HostVma>& host, uint64_t start, uint64_t end) {
  Counts c{};
  for (const HostVma& h : host) {
    const uint64_t lo = std::max(start, h.start), hi = std::min(end, h.end);
    if (lo >= hi) continue;
    uint64_t part = hi - lo, whole = h.end - h.start;
    if (part != whole && h.counts[kRss] > 0) {
      const int64_t present = PresentPages(mm, lo, hi);
      if (present >= 0) {
        part = std::min<uint64_t>(static_cast<uint64_t>(present) * kPageSize / 1024,
                                  h.counts[kRss]);
        whole = h.counts[kRss];
      }
    }
    for (size_t i = 0; i < kCounts.size(); ++i) {
      if (i == kThp) {
        c[i] = std::max(c[i], h.counts[i]);
      } else {
        c[i] += part == whole ? h.counts[i] : h.counts[i] * part / whole;
      }
    }
  }
  return c;
}

// The host's counts for the VMA `v`, shared out by overlap. Locked is the
// sandbox's own (the host locks nothing for the guest): the Pss of a
// locked VMA (smaps_account(): pss_locked).
Counts CountsFor(MM& mm, const std::vector<HostVma>& host, const Vma& v) {
  Counts c = HostCountsFor(mm, host, v.start, v.end);
  c[kLocked] = (v.lock & Vma::kLocked) ? c[kPss] : 0;
  return c;
}

// show_smap_vma_flags()'s two-letter names for what the sandbox knows of
// a mapping: access, may-access (a shared file mapping may not be made
// writable through a read-only fd), shared, grows-down (the stack),
// accountable (private writable), no-reserve, fork advice.
std::string VmFlags(const Vma& v) {
  std::string f;
  auto add = [&f](bool on, const char* name) {
    if (on) absl::StrAppend(&f, name, " ");
  };
  const bool shared = (v.flags & MAP_SHARED) != 0;
  const bool stack = v.name == "[stack]";
  add(v.prot & PROT_READ, "rd");
  add(v.prot & PROT_WRITE, "wr");
  add(v.prot & PROT_EXEC, "ex");
  add(shared, "sh");
  add(true, "mr");
  add(!(shared && v.file && !v.file->writable()), "mw");
  add(true, "me");
  add(shared, "ms");
  add(stack, "gd");
  add(v.lock & Vma::kLocked, "lo");
  add(!shared && (v.prot & PROT_WRITE) && (stack || !(v.flags & MAP_NORESERVE)), "ac");
  add(!stack && (v.flags & MAP_NORESERVE), "nr");
  add(v.dontfork, "dc");
  add(v.wipeonfork, "wf");
  return f;
}

// The VMAs smaps lists: the mm's and the vDSO.
std::vector<Vma> SmapsVmas(MM& mm) {
  std::vector<Vma> vmas = mm.Vmas();
  if (const uint64_t vdso = mm.address_space().VdsoBase().value(); vdso != 0) {
    Vma v;
    v.start = vdso;
    v.end = vdso + 2 * kPageSize;
    v.prot = PROT_READ | PROT_EXEC;
    v.flags = MAP_PRIVATE;
    v.name = "[vdso]";
    vmas.push_back(std::move(v));
  }
  return vmas;
}

std::string SmapsText(Task& t) {
  auto mm = MmOf(t);
  if (!mm) return "";
  const std::vector<HostVma> host = ReadHostSmaps(mm->address_space().host_pid());
  std::string out;
  for (const Vma& v : SmapsVmas(*mm)) {
    out += MM::MapsLine(v);
    const Counts c = CountsFor(*mm, host, v);
    absl::StrAppendFormat(&out, "%-16s%8u kB\n%-16s%8u kB\n%-16s%8u kB\n", "Size:",
                          (v.end - v.start) / 1024, "KernelPageSize:", kPageSize / 1024,
                          "MMUPageSize:", kPageSize / 1024);
    for (size_t i = 0; i < kCounts.size(); ++i) {
      if (i == kThp) {
        absl::StrAppendFormat(&out, "%-16s%8u\n", "THPeligible:", c[i]);
      } else {
        absl::StrAppendFormat(&out, "%-16s%8u kB\n", absl::StrCat(kCounts[i], ":"), c[i]);
      }
    }
    absl::StrAppend(&out, "VmFlags: ", VmFlags(v), "\n");
  }
  return out;
}

// show_smaps_rollup(): the span of all VMAs, then the sums, with Pss
// split into anonymous, file and shmem pages (a private file mapping's
// anonymous share counts as anonymous).
std::string SmapsRollupText(Task& t) {
  auto mm = MmOf(t);
  if (!mm) return "";
  const std::vector<HostVma> host = ReadHostSmaps(mm->address_space().host_pid());
  const std::vector<Vma> vmas = SmapsVmas(*mm);
  Counts sum{};
  uint64_t pss_anon = 0, pss_file = 0, pss_shmem = 0, lo = ~uint64_t{0}, hi = 0;
  for (const Vma& v : vmas) {
    lo = std::min(lo, v.start);
    hi = std::max(hi, v.end);
    const Counts c = CountsFor(*mm, host, v);
    for (size_t i = 0; i < kCounts.size(); ++i) sum[i] += c[i];
    if (v.flags & MAP_SHARED) {
      pss_shmem += v.file ? 0 : c[kPss];
      pss_file += v.file ? c[kPss] : 0;
    } else {
      const uint64_t anon = c[kRss] ? c[kPss] * std::min(c[kAnonymous], c[kRss]) / c[kRss] : 0;
      pss_anon += anon;
      pss_file += c[kPss] - anon;
    }
  }
  if (vmas.empty()) lo = hi = 0;
  std::string out = absl::StrFormat("%08x-%08x ---p 00000000 00:00 0%*s[rollup]\n", lo, hi, 26, "");
  auto row = [&out](const char* name, uint64_t kb) {
    absl::StrAppendFormat(&out, "%-16s%8u kB\n", absl::StrCat(name, ":"), kb);
  };
  row("Rss", sum[kRss]);
  row("Pss", sum[kPss]);
  row("Pss_Dirty", sum[kPssDirty]);
  row("Pss_Anon", pss_anon);
  row("Pss_File", pss_file);
  row("Pss_Shmem", pss_shmem);
  for (size_t i = kPssDirty + 1; i < kThp; ++i) row(kCounts[i], sum[i]);
  return out;
}

}  // namespace

void AddSmapsFiles(Kernel& k, SynthDir& dir, int tid) {
  // proc_maps_open(): PTRACE_MODE_READ, EACCES otherwise.
  dir.Add("smaps", PrivateTaskFile(k, tid, SmapsText));
  dir.Add("smaps_rollup", PrivateTaskFile(k, tid, SmapsRollupText));
}

}  // namespace seedvisor::sentry
