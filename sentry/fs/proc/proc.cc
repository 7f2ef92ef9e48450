#include "sentry/fs/proc/proc.h"

#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/base/cpus.h"
#include "sentry/fs/devpts/devpts.h"
#include "sentry/fs/mqueue/mqueue.h"
#include "sentry/fs/proc/fork_generation.h"
#include "sentry/fs/proc/meminfo.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/ipc/ipc_namespace.h"
#include "sentry/kernel/credentials.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/fs_context.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

constexpr long kProcSuperMagic = 0x9fa0;

std::string HostFileText(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t NowMonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// Bytes [start, end) of the process's memory, NUL-separated (cmdline/environ).
std::string ReadMemRange(Task& t, UserAddr start, UserAddr end) {
  auto mm = t.shared_mm();
  if (!mm || end <= start) return "";
  size_t len = std::min<uint64_t>(end.value() - start.value(), 1 << 20);
  std::string out(len, '\0');
  auto n = mm->CopyInPartial(start, out.data(), len);
  if (!n.ok()) return "";
  out.resize(*n);
  return out;
}

// The ids are those of /proc's pid namespace (0 for one outside it), but
// for the global_ ones.
struct ProcInfo {
  int pid = 0, tgid = 0, ppid = 0, pgid = 0, sid = 0, threads = 1;
  int global_pgid = 0, global_sid = 0;
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
  p.threads = static_cast<int>(tg.tasks.size());
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
  std::string h = HostFileText(absl::StrCat("/proc/", mm->address_space().host_pid(), "/statm").c_str());
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
  auto mm = t.shared_mm();
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
  if (int fg; ControllingPtyOf(p.global_sid, &tty, &fg)) {
    absl::MutexLock l(&k.mu());
    tpgid = Kernel::IdIn(ns, fg);
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
  auto mm = t.shared_mm();
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
  auto mm = t.shared_mm();
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
        vm.total * page_kb, vm.total * page_kb, 0, 0, hwm_kb, rss_kb, host.rss_anon,
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

// What /proc/PID/fd/N leads to when the file has no path (a pipe, the
// sandbox's stdio): opening it reopens the same object (FileDescription::
// Reopen), stat shows the file itself.
class ReopenInode : public SynthInode {
 public:
  explicit ReopenInode(FileRef f) : SynthInode(S_IFIFO | 0600), file_(std::move(f)) {
    if (auto st = file_->Stat(); st.ok()) st_ = *st;
  }
  Result<struct stat> Stat() override { return file_->Stat(); }
  Result<FileRef> Open(const std::shared_ptr<Dentry>&, int flags) override {
    return file_->Reopen(flags);
  }
  bool ReopensFile() const override { return true; }

 private:
  FileRef file_;
};

// /proc/PID/fd: its own process may always read and search it, whoever
// owns it (proc_fd_permission()).
class FdDirInode : public SynthDir {
 public:
  FdDirInode(Kernel& k, int tid) : SynthDir(0500), k_(k), tid_(tid) {}
  bool ExtraAccess(int) override {
    Task* c = CurrentTask();
    auto t = FindTask(k_, tid_);
    return c != nullptr && t != nullptr && c->tgid() == t->tgid();
  }

 private:
  Kernel& k_;
  const int tid_;
};

InodeRef FdDir(Kernel& k, int tid) {
  auto dir = std::make_shared<FdDirInode>(k, tid);
  dir->SetDynamic(
      [&k, tid](std::string_view name) -> Result<InodeRef> {
        SV_ASSIGN_OR_RETURN(int fd, OpenFdNamed(k, tid, name));
        auto link = std::make_shared<SynthSymlink>([&k, tid, fd]() -> Result<std::string> {
          auto t = FindTask(k, tid);
          std::shared_ptr<FdTable> fds = t ? t->shared_fds() : nullptr;
          Result<FileRef> f = fds ? fds->Get(fd) : Result<FileRef>(Errno(ENOENT));
          if (!f.ok()) return Errno(ENOENT);  // closed, or the task exited
          return (*f)->DisplayPath();
        });
        link->set_magic([&k, tid, fd]() -> std::shared_ptr<Dentry> {
          auto t = FindTask(k, tid);
          std::shared_ptr<FdTable> fds = t ? t->shared_fds() : nullptr;
          if (!fds) return nullptr;
          Result<FileRef> f = fds->Get(fd);
          if (!f.ok()) return nullptr;
          if ((*f)->dentry()) return (*f)->dentry();
          return std::make_shared<Dentry>((*f)->DisplayPath(), nullptr,
                                          std::make_shared<ReopenInode>(*f), nullptr);
        });
        return InodeRef(std::move(link));
      },
      [&k, tid]() { return FdDirEntries(k, tid, 0x40000000, DT_LNK); });
  return dir;
}

struct ProcView;
void FillTaskDir(const std::shared_ptr<ProcView>& view, SynthDir& dir, int tid, bool thread);

InodeRef NewTaskDir(const std::shared_ptr<ProcView>& view, Kernel& k, int tid, bool thread) {
  auto dir = std::make_shared<SynthDir>(0555);
  dir->set_fs_magic(kProcSuperMagic);
  FillTaskDir(view, *dir, tid, thread);
  // task_dump_owner(): everything below /proc/PID belongs to the task's
  // effective ids while its process is dumpable, to root otherwise; the
  // world-readable directories (/proc/PID itself, task/, fdinfo/) always
  // show the effective ids, as `stat /proc/PID` once was the way to read them.
  dir->SetSubtreeOwner([&k, tid](mode_t mode) -> std::pair<uid_t, gid_t> {
    auto t = FindTask(k, tid);
    if (!t) return {0, 0};
    if (mode != (S_IFDIR | 0555) && !t->tg().dumpable) return {0, 0};
    const Credentials& c = t->creds();
    return {c.euid, c.egid};
  });
  return dir;
}

// The directories of live tasks, kept while their task lives so that a
// path looked up twice gives the same inode (and inode number) both times,
// as Linux's dentry cache keeps /proc/PID's. A tid reused by a new task
// gets a new directory. Entries of tasks that are gone are dropped when
// the cache has grown to twice the live ones.
class TaskDirCache {
 public:
  InodeRef Get(const std::shared_ptr<ProcView>& view, Kernel& k, const std::shared_ptr<Task>& t,
               bool thread) {
    std::lock_guard<std::mutex> l(mu_);
    Entry& e = dirs_[{t->tid(), thread}];
    if (e.dir == nullptr || e.task.lock() != t) {
      e.task = t;
      e.dir = NewTaskDir(view, k, t->tid(), thread);
      if (dirs_.size() > 2 * live_mark_ + 64) Prune();
    }
    return e.dir;
  }

 private:
  struct Entry {
    std::weak_ptr<Task> task;
    InodeRef dir;
  };
  void Prune() {
    for (auto it = dirs_.begin(); it != dirs_.end();) {
      it = it->second.task.expired() ? dirs_.erase(it) : std::next(it);
    }
    live_mark_ = dirs_.size();
  }
  std::mutex mu_;
  std::map<std::pair<int, bool>, Entry> dirs_;
  size_t live_mark_ = 0;
};

// One procfs instance (NewProcFs): the pid namespace whose processes it
// shows, by their ids there (null: the sandbox's), and its directories
// of them. Its root holds it; what is below holds its namespace, and the
// view itself only weakly (the cache holds them).
struct ProcView {
  ProcView(Kernel& k, Vfs& vfs, std::shared_ptr<PidNamespace> ns)
      : k(k), vfs(vfs), ns(std::move(ns)) {}
  // The global id of `local`, an id in ns; 0 if it names nothing there.
  int GlobalOf(int local) {
    if (local <= 0) return 0;
    absl::MutexLock l(&k.mu());
    return Kernel::IdFrom(ns.get(), local);
  }
  Kernel& k;
  Vfs& vfs;
  const std::shared_ptr<PidNamespace> ns;
  TaskDirCache dirs;
};

InodeRef TaskDir(const std::shared_ptr<ProcView>& view, const std::shared_ptr<Task>& t,
                 bool thread) {
  return view->dirs.Get(view, view->k, t, thread);
}

// The ids in `ns` of the tasks `pick` picks, as directory entries
// (inode number: the global id).
template <typename Pick>
std::vector<DirEntry> TaskEntries(Kernel& k, const PidNamespace* ns, Pick pick) {
  std::vector<DirEntry> out;
  absl::MutexLock l(&k.mu());
  for (auto& t : k.Tasks()) {
    if (!pick(*t)) continue;
    const int local = Kernel::IdIn(ns, t->tid());
    if (local != 0) out.push_back({absl::StrCat(local), static_cast<uint64_t>(t->tid()), DT_DIR});
  }
  return out;
}

// A file that is no seq_file (proc_pid_cmdline_ops, environ): lseek sees
// i_size 0.
std::shared_ptr<SynthFile> SizeZeroSeek(std::shared_ptr<SynthFile> f) {
  f->set_seek(SynthSeek::kSizeZero);
  return f;
}

void FillTaskDir(const std::shared_ptr<ProcView>& view, SynthDir& dir, int tid, bool thread) {
  Kernel& k = view->k;
  Vfs& vfs = view->vfs;
  const std::shared_ptr<PidNamespace> ns = view->ns;
  dir.Add("stat",
          TaskFile(k, tid, [&k, thread, ns](Task& t) { return StatText(k, t, thread, ns.get()); }));
  dir.Add("status", TaskFile(k, tid, [&k, ns](Task& t) { return StatusText(k, t, ns.get()); }));
  dir.Add("statm", TaskFile(k, tid, [](Task& t) { return StatmText(t); }));
  auto comm = TaskFile(k, tid, [](Task& t) { return t.comm() + "\n"; }, 0644);
  // comm_write(): a thread of the same process only (EINVAL otherwise);
  // the first 15 bytes become the name as written, newline and all.
  comm->set_write([&k, tid](std::string_view text) -> Status {
    auto t = FindTask(k, tid);
    if (!t) return Errno(ESRCH);
    Task* caller = CurrentTask();
    if (caller != nullptr && caller->tgid() != t->tgid()) return Errno(EINVAL);
    text = text.substr(0, std::min<size_t>(text.size(), 15));
    t->set_comm(std::string(text.substr(0, text.find('\0'))));
    return {};
  });
  dir.Add("comm", comm);
  dir.Add("cmdline", SizeZeroSeek(TaskFile(k, tid, [](Task& t) -> std::string {
            if (!t.shared_mm()) return "";
            auto l = t.mm().layout();
            return ReadMemRange(t, l.arg_start, l.arg_end);
          })));
  dir.Add("environ", SizeZeroSeek(PrivateTaskFile(k, tid, [](Task& t) -> std::string {
            if (!t.shared_mm()) return "";
            auto l = t.mm().layout();
            return ReadMemRange(t, l.env_start, l.env_end);
          }, 0400)));
  dir.Add("maps", PrivateTaskFile(k, tid, [](Task& t) -> std::string {
            return t.shared_mm() ? t.mm().MapsText() : "";
          }));
  // The task's own mount namespace's (mounts_open_common(): its nsproxy's).
  dir.Add("mounts", TaskFile(k, tid, [&vfs](Task& t) -> std::string {
            std::shared_ptr<FsContext> fs = t.shared_fs();
            return fs ? vfs.MountsText(fs->mnt_ns().get()) : "";
          }));
  dir.Add("mountinfo", TaskFile(k, tid, [&vfs](Task& t) -> std::string {
            std::shared_ptr<FsContext> fs = t.shared_fs();
            return fs ? vfs.MountInfoText(fs->mnt_ns().get()) : "";
          }));
  dir.Add("exe", std::make_shared<SynthSymlink>([&k, tid]() -> Result<std::string> {
            auto t = FindTask(k, tid);
            if (!t || !t->shared_mm()) return Errno(ENOENT);
            std::string p = t->mm().layout().exe_path;
            if (p.empty()) return Errno(ENOENT);
            return p;
          }));
  dir.Add("cwd", std::make_shared<SynthSymlink>([&k, tid]() -> Result<std::string> {
            auto t = FindTask(k, tid);
            std::shared_ptr<FsContext> fs = t ? t->shared_fs() : nullptr;
            if (!fs) return Errno(ENOENT);
            return fs->cwd()->Path();
          }));
  dir.Add("root", SynthSymlink::Fixed("/"));
  dir.Add("fd", FdDir(k, tid));
  dir.Add("fdinfo", NewFdInfoDir(k, vfs, tid, ns));
  dir.Add("ns", NewNsDir(k, tid));
  dir.Add("mem", NewMemInode(k, tid));
  if (InodeRef net = NewNetDir(k)) dir.Add("net", net);
  AddTaskInfoFiles(k, dir, tid);
  AddTaskStatFiles(k, dir, tid, thread);
  AddSmapsFiles(k, dir, tid);
  if (!thread) {
    auto tasks = std::make_shared<SynthDir>(0555);
    tasks->SetDynamic(
        [&k, tid, weak = std::weak_ptr<ProcView>(view)](std::string_view name) -> Result<InodeRef> {
          int id;
          std::shared_ptr<ProcView> v = weak.lock();
          if (!v || !absl::SimpleAtoi(absl::string_view(name.data(), name.size()), &id)) {
            return Errno(ENOENT);
          }
          auto t = FindTask(k, v->GlobalOf(id));
          if (!t || t->tgid() != tid) return Errno(ENOENT);
          return TaskDir(v, t, true);
        },
        [&k, tid, ns]() {
          return TaskEntries(k, ns.get(), [tid](Task& t) { return t.tgid() == tid; });
        });
    dir.Add("task", tasks);
  }
}

Result<InodeRef> PidLookup(const std::shared_ptr<ProcView>& view, std::string_view name) {
  int id;
  if (!absl::SimpleAtoi(absl::string_view(name.data(), name.size()), &id) || id <= 0) {
    return Errno(ENOENT);
  }
  const int global = view->GlobalOf(id);
  auto t = global > 0 ? FindTask(view->k, global) : nullptr;
  if (!t) return Errno(ENOENT);
  // /proc/TID works for any thread, shown as its own process directory.
  return TaskDir(view, t, false);
}

std::string UptimeText(Kernel& k) {
  double up = static_cast<double>(NowMonoNs() - k.boot_time_ns()) / 1e9;
  return absl::StrFormat("%.2f %.2f\n", up, up);
}

// loadavg_proc_show(): the last field is the id the reader's pid
// namespace gave out last (not /proc's: task_active_pid_ns(current)).
std::string LoadavgText(Kernel& k) {
  Task* reader = CurrentTask();
  int n = 0, last = 0;
  {
    absl::MutexLock l(&k.mu());
    n = static_cast<int>(k.Tasks().size());
    last = k.LastIdIn(reader != nullptr ? reader->pid_ns() : nullptr);
  }
  return absl::StrFormat("0.00 0.00 0.00 1/%d %d\n", n, last);
}

std::string StatTextSystem(Kernel& k) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int64_t btime = now.tv_sec - (NowMonoNs() - k.boot_time_ns()) / 1000000000LL;
  int procs;
  {
    absl::MutexLock l(&k.mu());
    procs = static_cast<int>(k.Tasks().size());
  }
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  std::string out = "cpu  0 0 0 0 0 0 0 0 0 0\n";
  for (long i = 0; i < ncpu; ++i) absl::StrAppend(&out, "cpu", i, " 0 0 0 0 0 0 0 0 0 0\n");
  absl::StrAppend(&out, "intr 0\nctxt 0\nbtime ", btime, "\nprocesses ", procs,
                  "\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n");
  return out;
}

std::string RandomUuid() {
  unsigned char b[16];
  if (getentropy(b, sizeof(b)) != 0) memset(b, 0, sizeof(b));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n", b[0], b[1], b[2],
      b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

}  // namespace

InodeRef NewProcFs(Kernel& k, Vfs& vfs, std::shared_ptr<PidNamespace> pid_ns) {
  auto view = std::make_shared<ProcView>(k, vfs, std::move(pid_ns));
  const std::shared_ptr<PidNamespace>& ns = view->ns;
  auto root = std::make_shared<SynthDir>(0555);
  root->set_fs_magic(kProcSuperMagic);
  // proc_self_get_link(), proc_thread_self_get_link(): the reader's ids in
  // /proc's namespace; ENOENT for a reader outside it.
  root->Add("self", std::make_shared<SynthSymlink>([&k, ns]() -> Result<std::string> {
              Task* t = CurrentTask();
              if (!t) return Errno(ENOENT);
              absl::MutexLock l(&k.mu());
              const int tgid = Kernel::IdIn(ns.get(), t->tgid());
              if (tgid == 0) return Errno(ENOENT);
              return absl::StrCat(tgid);
            }));
  root->Add("thread-self", std::make_shared<SynthSymlink>([&k, ns]() -> Result<std::string> {
              Task* t = CurrentTask();
              if (!t) return Errno(ENOENT);
              absl::MutexLock l(&k.mu());
              const int tgid = Kernel::IdIn(ns.get(), t->tgid());
              if (tgid == 0) return Errno(ENOENT);
              return absl::StrCat(tgid, "/task/", Kernel::IdIn(ns.get(), t->tid()));
            }));
  if (k.net()) root->Add("net", SynthSymlink::Fixed("self/net"));
  root->Add("cpuinfo", SynthFile::Text([] { return HostFileText("/proc/cpuinfo"); }));
  root->Add("meminfo",
            SynthFile::Text([] { return MeminfoText(HostFileText("/proc/meminfo")); }));
  root->Add("mounts", SynthSymlink::Fixed("self/mounts"));
  root->Add("uptime", SynthFile::Text([&k] { return UptimeText(k); }));
  root->Add("loadavg", SynthFile::Text([&k] { return LoadavgText(k); }));
  root->Add("stat", SynthFile::Text([&k] { return StatTextSystem(k); }));
  root->Add("version", SynthFile::Text([] {
              return absl::StrCat("Linux version ", Kernel::kRelease,
                                  " (seedvisor@seedvisor) (gcc version 12) ", Kernel::kVersion,
                                  "\n");
            }));
  root->Add("filesystems", SynthFile::Text([] {
              return std::string("nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\n"
                                 "nodev\toverlay\nnodev\tpipefs\nnodev\tmqueue\n");
            }));

  auto sys = std::make_shared<SynthDir>(0555);
  auto kernel_dir = std::make_shared<SynthDir>(0555);
  auto random = std::make_shared<SynthDir>(0555);
  std::string boot_id = RandomUuid();
  // The reader's UTS namespace (proc_do_uts_string()).
  auto reader_uts = [&k]() -> UtsNames& {
    Task* t = CurrentTask();
    return t != nullptr ? t->uts() : k.uts();
  };
  kernel_dir->Add("hostname",
                  SynthFile::Text([reader_uts] { return reader_uts().hostname() + "\n"; }));
  kernel_dir->Add("domainname",
                  SynthFile::Text([reader_uts] { return reader_uts().domainname() + "\n"; }));
  kernel_dir->Add("osrelease",
                  SynthFile::Text([] { return std::string(Kernel::kRelease) + "\n"; }));
  kernel_dir->Add("ostype", SynthFile::Text([] { return std::string("Linux\n"); }));
  kernel_dir->Add("version",
                  SynthFile::Text([] { return std::string(Kernel::kVersion) + "\n"; }));
  kernel_dir->Add("pid_max", SynthFile::Text([] { return std::string("32768\n"); }));
  // The last capability the sandbox knows (libcap reads it).
  kernel_dir->Add("cap_last_cap", SynthFile::Text([] { return absl::StrCat(kLastCap, "\n"); }));
  kernel_dir->Add("ngroups_max", SynthFile::Text([] { return std::string("65536\n"); }));
  for (const char* name : {"shmmax", "shmall", "shmmni", "sem", "msgmax", "msgmnb", "msgmni"}) {
    kernel_dir->Add(name, SynthFile::Text([n = std::string(name)] { return IpcLimitText(n); }));
  }
  random->Add("uuid", SynthFile::Text([] { return RandomUuid(); }));
  random->Add("boot_id", SynthFile::Text([boot_id] { return boot_id; }));
  // Linux 5.18+ always reports a full pool of 256 bits.
  random->Add("entropy_avail", SynthFile::Text([] { return std::string("256\n"); }));
  kernel_dir->Add("random", random);
  sys->Add("kernel", kernel_dir);
  auto vm = std::make_shared<SynthDir>(0555);
  vm->Add("overcommit_memory", SynthFile::Text([] { return std::string("0\n"); }));
  vm->Add("max_map_count", SynthFile::Text([] { return std::string("65530\n"); }));
  // The lowest address the sandbox maps (MM::kMinAddr), not the host's.
  vm->Add("mmap_min_addr", SynthFile::Text([] { return absl::StrCat(MM::kMinAddr, "\n"); }));
  sys->Add("vm", vm);
  auto fs = std::make_shared<SynthDir>(0555);
  fs->Add("pipe-max-size", SynthFile::Text([] { return std::string("1048576\n"); }));
  fs->Add("nr_open", SynthFile::Text([] { return std::string("1048576\n"); }));
  // fs.mqueue: the POSIX message queue limits, root may change them.
  auto mqueue = std::make_shared<SynthDir>(0555);
  for (const char* name :
       {"msg_max", "msgsize_max", "msg_default", "msgsize_default", "queues_max"}) {
    auto f = std::make_shared<SynthFile>(
        [&k, n = std::string(name)] { return k.mqueue().LimitText(n); }, 0644);
    f->set_write([&k, n = std::string(name)](std::string_view v) {
      return k.mqueue().SetLimit(n, v);
    });
    mqueue->Add(name, f);
  }
  fs->Add("mqueue", mqueue);
  // The one inotify limit the sandbox enforces (InotifyFile::kMaxQueued).
  auto inotify = std::make_shared<SynthDir>(0555);
  inotify->Add("max_queued_events", SynthFile::Text([] { return std::string("16384\n"); }));
  fs->Add("inotify", inotify);
  sys->Add("fs", fs);
  // The listen(2) backlog clamp the sandbox's sockets apply.
  auto net = std::make_shared<SynthDir>(0555);
  auto core = std::make_shared<SynthDir>(0555);
  core->Add("somaxconn", SynthFile::Text([] { return std::string("4096\n"); }));
  net->Add("core", core);
  if (InodeRef ipv4 = NewSysNetIpv4Dir(k)) net->Add("ipv4", ipv4);
  sys->Add("net", net);
  // lseek: /proc/sys files are proc_sys_file_operations (no seq_file).
  sys->SetSubtreeSeek(SynthSeek::kSizeZero, SynthSeek::kSizeZero);
  root->Add("sys", sys);
  // Their pids as the reader's pid namespace shows them (sysvipc_proc_open():
  // task_active_pid_ns(current)).
  auto reader_pid_ns = []() -> const PidNamespace* {
    Task* t = CurrentTask();
    return t != nullptr ? t->pid_ns() : nullptr;
  };
  auto sysvipc = std::make_shared<SynthDir>(0555);
  sysvipc->Add("sem", SynthFile::Text([&k] { return k.ipc().sems().ProcText(); }));
  sysvipc->Add("shm", SynthFile::Text([&k, reader_pid_ns] {
                 return k.ipc().shms().ProcText(k, reader_pid_ns());
               }));
  sysvipc->Add("msg", SynthFile::Text([&k, reader_pid_ns] {
                 return k.ipc().msgs().ProcText(reader_pid_ns());
               }));
  root->Add("sysvipc", sysvipc);
  auto seedvisor_dir = std::make_shared<SynthDir>(0555);
  seedvisor_dir->Add("fork_generation", NewForkGenerationInode(k));
  root->Add("seedvisor", seedvisor_dir);

  root->SetDynamic(
      [view](std::string_view name) { return PidLookup(view, name); },
      [&k, ns]() { return TaskEntries(k, ns.get(), [](Task& t) { return t.tid() == t.tgid(); }); });
  // lseek: the rest are seq_files; the directories have i_size 0.
  root->SetSubtreeSeek(SynthSeek::kSizeZero, SynthSeek::kSeqFile);
  return root;
}

}  // namespace seedvisor::sentry
