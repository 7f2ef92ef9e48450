// /proc/PID/{stat,statm,status} (fs/proc/array.c): the process's state,
// ids, signal sets, CPU time and memory counts.
#include <sys/mman.h>
#include <sys/personality.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/base/cpus.h"
#include "sentry/fs/devpts/devpts.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/kernel/credentials.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/fs_context.h"

namespace seedvisor::sentry {

namespace {

// The ids are those of /proc's pid namespace (0 for one outside it), but
// for the global_ ones.
struct ProcInfo {
  int pid = 0, tgid = 0, ppid = 0, pgid = 0, sid = 0, threads = 1;
  int global_pgid = 0, global_sid = 0;
  std::shared_ptr<const PidNumbers> session;  // global_sid's numbers
  int64_t start_ns = 0;
};

ProcInfo InfoOf(Kernel& k, Task& t, const PidNamespace* ns) {
  ProcInfo p;
  absl::MutexLock l(&k.mu());
  ThreadGroup& tg = t.tg();
  p.pid = Kernel::IdIn(ns, t.tid());
  p.tgid = Kernel::IdIn(ns, t.tgid());
  if (auto parent = tg.parent.lock()) p.ppid = Kernel::IdIn(ns, parent->tgid());
  p.pgid = Kernel::IdIn(ns, tg.pgid);
  p.sid = Kernel::IdIn(ns, tg.sid);
  p.global_pgid = tg.pgid;
  p.global_sid = tg.sid;
  p.session = k.NumbersOfLocked(tg.sid);
  // signal->nr_threads: an exited leader counts until it is reaped.
  p.threads = static_cast<int>(tg.tasks.size()) + (tg.leader == nullptr ? 1 : 0);
  p.start_ns = t.start_time_ns();
  return p;
}

// The signal sets /proc/PID/status and stat show (bit N-1 is signal N).
struct SignalSets {
  SigSet pending = 0, shared = 0, blocked = 0, ignored = 0, caught = 0;
  int tracer_pid = 0;
};

SignalSets SignalSetsOf(Kernel& k, Task& t, const PidNamespace* ns) {
  SignalSets s;
  absl::MutexLock l(&k.mu());
  if (const Task* tracer = t.ptrace().tracer) s.tracer_pid = Kernel::IdIn(ns, tracer->tgid());
  s.pending = t.pending().Set();
  s.shared = t.tg().shared_pending.Set();
  s.blocked = t.signal_mask();
  for (int sig = 1; sig <= kNumSignals; ++sig) {
    uint64_t h = t.tg().handlers->actions[sig].handler;
    if (h == reinterpret_cast<uint64_t>(SIG_IGN)) {
      s.ignored |= SigBit(sig);
    } else if (h != reinterpret_cast<uint64_t>(SIG_DFL)) {
      s.caught |= SigBit(sig);
    }
  }
  return s;
}

// Pages mapped, and resident: the host process's that holds the address
// space (its few stub pages included), never more than what is mapped.
struct Residency {
  uint64_t size = 0, resident = 0, shared = 0;
};

Residency ResidencyOf(const std::shared_ptr<MM>& mm) {
  Residency r;
  if (!mm) return r;
  for (const auto& v : mm->Vmas()) r.size += (v.end - v.start) / kPageSize;
  uint64_t host[3] = {0, 0, 0};
  std::string h =
      HostFileText(absl::StrCat("/proc/", mm->address_space().host_pid(), "/statm").c_str());
  std::sscanf(h.c_str(), "%lu %lu %lu", &host[0], &host[1], &host[2]);
  r.resident = std::min(host[1], r.size);
  r.shared = std::min(host[2], r.resident);
  return r;
}

// do_task_stat(): utime (field 14) and cutime (16) in USER_HZ ticks from the
// guest CPU time the platform measured (all of it user time, as getrusage
// reports it), rss (24) in pages, and the obsolete decimal signal fields
// (31-34: pending, blocked, ignored, caught; the low 31 bits of the first
// word, as Linux masks them). Without ptrace read access to the task
// (another user's process) startcode/endcode show 1 and the stack, the
// other address fields, wchan and the exit code 0, as Linux hides them.
std::string StatText(Kernel& k, Task& t, bool thread, const PidNamespace* ns) {
  ProcInfo p = InfoOf(k, t, ns);
  int64_t ticks = (p.start_ns - k.boot_time_ns()) / (1000000000LL / 100);
  if (ticks < 0) ticks = 0;
  auto mm = MmOf(t);
  uint64_t vsize = 0;
  if (mm) {
    for (const auto& v : mm->Vmas()) vsize += v.end - v.start;
  }
  const int64_t ns_per_tick = 1000000000LL / 100;  // USER_HZ
  const int64_t utime = (thread ? t.ThreadCpuNs() : t.ProcessCpuNs()) / ns_per_tick;
  const int64_t cutime = thread ? 0 : t.ChildrenCpuNs() / ns_per_tick;
  const SignalSets sig = SignalSetsOf(k, t, ns);
  constexpr uint64_t kObsolete = 0x7fffffff;
  const bool permitted = CallerMayReadTask(t);
  // The controlling terminal and its foreground group; none: 0 and -1.
  dev_t tty = 0;
  int tpgid = -1;
  // do_task_stat(): pid_nr_ns() of tty->pgrp, the number it was given.
  if (std::shared_ptr<const PidNumbers> fg; ControllingPtyOf(p.session.get(), &tty, &fg)) {
    tpgid = PidNumbers::In(fg.get(), ns);
  }
  int nice, exit_signal, exit_code;
  uint64_t rsslim;
  {
    absl::MutexLock l(&k.mu());
    nice = t.tg().nice;
    // A thread other than the leader has none (CLONE_THREAD: -1).
    exit_signal = t.tid() == t.tgid() ? t.tg().exit_signal : -1;
    exit_code = t.tg().state != ThreadGroup::State::kAlive ? t.tg().exit_status : 0;
    rsslim = t.tg().rlimits[RLIMIT_RSS].rlim_cur;
  }
  // wchan: 1 when the task sleeps, as far as the caller may know
  // (task_is_running(); only for a thread or a one-thread process). The
  // state is read once for both fields: read twice, a task waking between
  // the reads showed state S with wchan 0 (CI, proc_depth_systrap).
  const char state = t.StateChar();
  const bool wchan = permitted && (thread || p.threads < 2) && state != 'R';
  MM::Layout l;
  if (mm) l = mm->layout();
  const uint64_t code_start = !mm ? 0 : permitted ? l.start_code.value() : 1;
  const uint64_t code_end = !mm ? 0 : permitted ? l.end_code.value() : 1;
  const bool addrs = mm && permitted;
  // Field 9, flags: PF_RANDOMIZE unless the persona says ADDR_NO_RANDOMIZE.
  const unsigned flags = (t.personality() & ADDR_NO_RANDOMIZE) ? 0 : 0x00400000;
  return absl::StrFormat(
      "%d (%s) %c %d %d %d %d %d %u 0 0 0 0 %d 0 %d 0 %d %d %d 0 %d %u %u %u %u %u %u 0 0 "
      "%u %u %u %u %d 0 0 %d 0 0 0 0 0 0 %u %u %u %u %u %u %u %d\n",
      p.pid, t.comm(), state, p.ppid, p.pgid, p.sid, static_cast<int>(tty), tpgid,
      flags, utime, cutime, 20 + nice, nice, p.threads, ticks, vsize, ResidencyOf(mm).resident,
      rsslim, code_start, code_end, addrs ? l.start_stack.value() : 0,
      sig.pending & kObsolete, sig.blocked & kObsolete, sig.ignored & kObsolete,
      sig.caught & kObsolete, wchan ? 1 : 0, exit_signal,
      addrs ? l.start_data.value() : 0, addrs ? l.end_data.value() : 0,
      addrs ? l.start_brk.value() : 0, addrs ? l.arg_start.value() : 0,
      addrs ? l.arg_end.value() : 0, addrs ? l.env_start.value() : 0,
      addrs ? l.env_end.value() : 0, permitted ? exit_code : 0);
}

// The mm's page counts that statm and status show (task_mem(),
// task_statm()): data_vm (private writable, not the stack), stack_vm (the
// stack), exec_vm (executable, not writable, not the stack) and the
// executable's text (its code segments' page span).
struct VmCounts {
  uint64_t total = 0, data = 0, stack = 0, exec = 0, text = 0;
};

VmCounts VmCountsOf(MM& mm) {
  VmCounts c;
  for (const auto& v : mm.Vmas()) {
    const uint64_t pages = (v.end - v.start) / kPageSize;
    const bool stack = v.name == "[stack]";
    c.total += pages;
    if (stack) {
      c.stack += pages;
    } else if ((v.prot & PROT_WRITE) && !(v.flags & MAP_SHARED)) {
      c.data += pages;
    } else if ((v.prot & PROT_EXEC) && !(v.prot & PROT_WRITE)) {
      c.exec += pages;
    }
  }
  const MM::Layout l = mm.layout();
  if (l.end_code.value() > l.start_code.value()) {
    c.text = (PageRoundUp(l.end_code.value()) - PageRoundDown(l.start_code.value())) / kPageSize;
  }
  return c;
}

// statm: size resident shared text lib data dt, in pages (proc_pid_statm():
// lib and dt are always 0, data is data_vm + stack_vm). resident and
// shared are the host process's that holds the address space (its few
// stub pages included).
std::string StatmText(Task& t) {
  auto mm = MmOf(t);
  if (!mm) return "0 0 0 0 0 0 0\n";
  const VmCounts c = VmCountsOf(*mm);
  const Residency r = ResidencyOf(mm);
  return absl::StrFormat("%d %d %d %d 0 %d 0\n", r.size, r.resident, r.shared, c.text,
                         c.data + c.stack);
}

// "kB" values of the host's /proc/PID/status for the address space's
// process: its Rss split, page tables and swap, none above `cap_kb`.
struct HostMem {
  uint64_t rss_anon = 0, rss_file = 0, rss_shmem = 0, pte = 0, swap = 0;
};

HostMem HostMemOf(const std::shared_ptr<MM>& mm, uint64_t cap_kb) {
  HostMem h;
  if (!mm) return h;
  const std::string text =
      HostFileText(absl::StrCat("/proc/", mm->address_space().host_pid(), "/status").c_str());
  auto value = [&text, cap_kb](const char* key) -> uint64_t {
    size_t at = text.find(key);
    uint64_t v = 0;
    if (at != std::string::npos) std::sscanf(text.c_str() + at + std::strlen(key), ": %lu", &v);
    return std::min(v, cap_kb);
  };
  h.rss_anon = value("\nRssAnon");
  h.rss_file = value("\nRssFile");
  h.rss_shmem = value("\nRssShmem");
  h.pte = value("\nVmPTE");
  h.swap = value("\nVmSwap");
  return h;
}

// A CPU mask as %*pb prints it (32-bit hex words, highest first, comma
// separated) and as %*pbl does (ranges).
std::string CpuMaskText(const cpu_set_t& set, size_t mask_bytes) {
  const int words = static_cast<int>(std::max<size_t>(1, (mask_bytes * 8 + 31) / 32));
  const int ncpus = static_cast<int>(mask_bytes * 8);
  std::string hex;
  bool leading = true;
  for (int w = words - 1; w >= 0; --w) {
    uint32_t word = 0;
    for (int b = 0; b < 32 && w * 32 + b < ncpus; ++b) {
      if (CPU_ISSET(w * 32 + b, &set)) word |= 1u << b;
    }
    if (leading && word == 0 && w > 0) continue;
    absl::StrAppend(&hex, hex.empty() ? "" : ",",
                    leading ? absl::StrFormat("%x", word) : absl::StrFormat("%08x", word));
    leading = false;
  }
  return hex;
}

std::string CpuListText(const cpu_set_t& set, size_t mask_bytes) {
  std::string out;
  const int ncpus = static_cast<int>(mask_bytes * 8);
  for (int c = 0; c < ncpus; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    int e = c;
    while (e + 1 < ncpus && CPU_ISSET(e + 1, &set)) ++e;
    absl::StrAppend(&out, out.empty() ? "" : ",", c);
    if (e > c) absl::StrAppend(&out, "-", e);
    c = e;
  }
  return out;
}

// Mems_allowed: node 0 of MAX_NUMNODES (1024), 32-bit words highest first.
constexpr char kMemsAllowedHigh[] =
    "00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,"
    "00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,"
    "00000000,00000000,00000000,00000000,00000000,00000000,00000000,00000000,"
    "00000000,00000000,00000000,00000000,00000000,00000000,00000000,";

// proc_pid_status(), in its order. The memory lines come from the mm's
// VMAs (sizes) and from the host process that holds the address space
// (resident pages and their kinds, page tables, the peak RSS).
std::string StatusText(Kernel& k, Task& t, const PidNamespace* ns) {
  ProcInfo p = InfoOf(k, t, ns);
  const Credentials& c = t.creds();
  const SeccompState sc = t.seccomp();
  std::string groups;
  for (gid_t g : c.groups) absl::StrAppend(&groups, g, " ");
  auto mm = MmOf(t);
  VmCounts vm;
  if (mm) vm = VmCountsOf(*mm);
  const uint64_t rss_kb = ResidencyOf(mm).resident * kPageSize / 1024;
  const HostMem host = HostMemOf(mm, rss_kb);
  const uint64_t hwm_kb =
      mm ? std::max<uint64_t>(rss_kb, static_cast<uint64_t>(mm->address_space().MaxRssKb())) : 0;
  const uint64_t page_kb = kPageSize / 1024;
  // The signal lines (proc_pid_status(): render_sigset_t).
  const SignalSets sig = SignalSetsOf(k, t, ns);
  const char* state = "R (running)";
  switch (t.StateChar()) {
    case 'S': state = "S (sleeping)"; break;
    case 'T': state = "T (stopped)"; break;
    case 't': state = "t (tracing stop)"; break;
    case 'Z': state = "Z (zombie)"; break;
    default: break;
  }
  const SandboxCpuSet& cpus = SandboxCpus();
  cpu_set_t allowed;
  int thp_enabled;
  {
    absl::MutexLock l(&k.mu());
    allowed = t.affinity_.value_or(cpus.set);
    thp_enabled = t.tg().thp_disable ? 0 : 1;
  }
  // NStgid and the rest: the id in each pid namespace from /proc's down
  // to the task's own (proc_pid_status(): levels ns->level to the task's);
  // 0 where a group or session leader is outside one.
  std::string ns_ids[4];
  {
    absl::MutexLock l(&k.mu());
    const int globals[4] = {t.tgid(), t.tid(), p.global_pgid, p.global_sid};
    std::vector<const PidNamespace*> levels;  // the task's own first
    for (const PidNamespace* n = t.pid_ns();; n = n->parent().get()) {
      levels.push_back(n);
      if (n == ns || n == nullptr) break;
    }
    for (int i = 0; i < 4; ++i) {
      for (auto it = levels.rbegin(); it != levels.rend(); ++it) {
        absl::StrAppend(&ns_ids[i], ns_ids[i].empty() ? "" : "\t", Kernel::IdIn(*it, globals[i]));
      }
    }
  }
  // proc_task_umask(): no Umask line once the task's fs context is gone.
  std::shared_ptr<FsContext> fs = t.shared_fs();
  const std::string umask = fs ? absl::StrFormat("Umask:\t%04o\n", fs->umask()) : "";
  std::string out = absl::StrFormat(
      "Name:\t%s\n%sState:\t%s\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n"
      "TracerPid:\t%d\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nFDSize:\t64\nGroups:\t%s\n"
      "NStgid:\t%s\nNSpid:\t%s\nNSpgid:\t%s\nNSsid:\t%s\nKthread:\t0\n",
      t.comm(), umask, state, p.tgid, p.pid, p.ppid, sig.tracer_pid, c.ruid, c.euid,
      c.suid, c.fsuid, c.rgid, c.egid, c.sgid, c.fsgid, groups, ns_ids[0], ns_ids[1], ns_ids[2],
      ns_ids[3]);
  if (mm) {
    // VmPeak is not tracked: the current size, its lower bound.
    absl::StrAppendFormat(
        &out,
        "VmPeak:\t%8d kB\nVmSize:\t%8d kB\nVmLck:\t%8d kB\nVmPin:\t%8d kB\nVmHWM:\t%8d kB\n"
        "VmRSS:\t%8d kB\nRssAnon:\t%8d kB\nRssFile:\t%8d kB\nRssShmem:\t%8d kB\n"
        "VmData:\t%8d kB\nVmStk:\t%8d kB\nVmExe:\t%8d kB\nVmLib:\t%8d kB\nVmPTE:\t%8d kB\n"
        "VmSwap:\t%8d kB\n",
        vm.total * page_kb, vm.total * page_kb, mm->LockedBytes() / 1024, 0, hwm_kb, rss_kb, host.rss_anon,
        host.rss_file, host.rss_shmem, vm.data * page_kb, vm.stack * page_kb, vm.text * page_kb,
        (vm.exec > vm.text ? vm.exec - vm.text : 0) * page_kb, host.pte, host.swap);
  }
  absl::StrAppendFormat(
      &out,
      "HugetlbPages:\t%8d kB\nCoreDumping:\t0\nTHP_enabled:\t%d\nuntag_mask:\t0xffffffffffffffff\n"
      "Threads:\t%d\nSigQ:\t0/0\nSigPnd:\t%016x\n"
      "ShdPnd:\t%016x\nSigBlk:\t%016x\nSigIgn:\t%016x\n"
      "SigCgt:\t%016x\nCapInh:\t%016x\nCapPrm:\t%016x\n"
      "CapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\nNoNewPrivs:\t%d\n"
      "Seccomp:\t%d\nSeccomp_filters:\t%d\nCpus_allowed:\t%s\n"
      "Cpus_allowed_list:\t%s\nMems_allowed:\t%s00000001\nMems_allowed_list:\t0\n"
      "voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
      0, thp_enabled, p.threads, sig.pending, sig.shared, sig.blocked, sig.ignored, sig.caught,
      c.cap_inheritable, c.cap_permitted, c.cap_effective, c.cap_bounding, c.cap_ambient,
      c.no_new_privs || sc.sync_no_new_privs ? 1 : 0, sc.mode, sc.filter_count(),
      CpuMaskText(allowed, cpus.mask_bytes), CpuListText(allowed, cpus.mask_bytes),
      kMemsAllowedHigh);
  return out;
}

}  // namespace

void AddTaskStatusFiles(Kernel& k, SynthDir& dir, int tid, bool thread,
                        std::shared_ptr<PidNamespace> ns) {
  dir.Add("stat",
          TaskFile(k, tid, [&k, thread, ns](Task& t) { return StatText(k, t, thread, ns.get()); }));
  dir.Add("status", TaskFile(k, tid, [&k, ns](Task& t) { return StatusText(k, t, ns.get()); }));
  dir.Add("statm", TaskFile(k, tid, [](Task& t) { return StatmText(t); }));
}

}  // namespace seedvisor::sentry
