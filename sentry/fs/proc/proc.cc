#include "sentry/fs/proc/proc.h"

#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/fs/mqueue/mqueue.h"
#include "sentry/fs/proc/fork_generation.h"
#include "sentry/fs/proc/meminfo.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/ipc/ipc_namespace.h"
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

struct ProcInfo {
  int ppid = 0, pgid = 0, sid = 0, threads = 1;
  int64_t start_ns = 0;
};

ProcInfo InfoOf(Kernel& k, Task& t) {
  ProcInfo p;
  absl::MutexLock l(&k.mu());
  ThreadGroup& tg = t.tg();
  if (auto parent = tg.parent.lock()) p.ppid = parent->tgid();
  p.pgid = tg.pgid;
  p.sid = tg.sid;
  p.threads = static_cast<int>(tg.tasks.size());
  p.start_ns = t.start_time_ns();
  return p;
}

// The signal sets /proc/PID/status and stat show (bit N-1 is signal N).
struct SignalSets {
  SigSet pending = 0, shared = 0, blocked = 0, ignored = 0, caught = 0;
  int tracer_pid = 0;
};

SignalSets SignalSetsOf(Kernel& k, Task& t) {
  SignalSets s;
  absl::MutexLock l(&k.mu());
  if (const Task* tracer = t.ptrace().tracer) s.tracer_pid = tracer->tgid();
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
// word, as Linux masks them).
std::string StatText(Kernel& k, Task& t, bool thread) {
  ProcInfo p = InfoOf(k, t);
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
  const SignalSets sig = SignalSetsOf(k, t);
  constexpr uint64_t kObsolete = 0x7fffffff;
  int id = thread ? t.tid() : t.tgid();
  return absl::StrFormat(
      "%d (%s) %c %d %d %d 0 %d 4194560 0 0 0 0 %d 0 %d 0 20 0 %d 0 %d %u %u "
      "18446744073709551615 0 0 0 0 0 %u %u %u %u 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
      id, t.comm(), t.StateChar(), p.ppid, p.pgid, p.sid, p.pgid, utime, cutime, p.threads, ticks,
      vsize, ResidencyOf(mm).resident, sig.pending & kObsolete, sig.blocked & kObsolete,
      sig.ignored & kObsolete, sig.caught & kObsolete);
}

// statm: size resident shared text lib data dt, in pages (proc_pid_statm()).
// size, text (the executable's code) and data (private writable memory,
// VmData + VmStk) come from the VMAs; resident and shared are the host
// process's that holds the address space (its few stub pages included).
std::string StatmText(Task& t) {
  auto mm = t.shared_mm();
  if (!mm) return "0 0 0 0 0 0 0\n";
  uint64_t text = 0, data = 0;
  const std::string exe = mm->layout().exe_path;
  for (const auto& v : mm->Vmas()) {
    uint64_t pages = (v.end - v.start) / kPageSize;
    if (v.file && (v.prot & PROT_EXEC) && v.name == exe) text += pages;
    if (!(v.flags & MAP_SHARED) && (v.prot & PROT_WRITE)) data += pages;
  }
  const Residency r = ResidencyOf(mm);
  return absl::StrFormat("%d %d %d %d 0 %d 0\n", r.size, r.resident, r.shared, text, data);
}

std::string StatusText(Kernel& k, Task& t) {
  ProcInfo p = InfoOf(k, t);
  const Credentials& c = t.creds();
  const SeccompState sc = t.seccomp();
  std::string groups;
  for (gid_t g : c.groups) absl::StrAppend(&groups, g, " ");
  uint64_t vsize = 0;
  if (auto mm = t.shared_mm()) {
    for (const auto& v : mm->Vmas()) vsize += v.end - v.start;
  }
  // The signal lines (proc_pid_status(): render_sigset_t).
  const SignalSets sig = SignalSetsOf(k, t);
  const char* state = "R (running)";
  switch (t.StateChar()) {
    case 'S': state = "S (sleeping)"; break;
    case 'T': state = "T (stopped)"; break;
    case 't': state = "t (tracing stop)"; break;
    case 'Z': state = "Z (zombie)"; break;
    default: break;
  }
  return absl::StrFormat(
      "Name:\t%s\nUmask:\t%04o\nState:\t%s\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n"
      "TracerPid:\t%d\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nFDSize:\t64\nGroups:\t%s\n"
      "VmSize:\t%8d kB\nVmRSS:\t%8d kB\nThreads:\t%d\nSigQ:\t0/0\nSigPnd:\t%016x\n"
      "ShdPnd:\t%016x\nSigBlk:\t%016x\nSigIgn:\t%016x\n"
      "SigCgt:\t%016x\nCapInh:\t%016x\nCapPrm:\t%016x\n"
      "CapEff:\t%016x\nCapBnd:\t%016x\nCapAmb:\t%016x\nNoNewPrivs:\t%d\n"
      "Seccomp:\t%d\nSeccomp_filters:\t%d\nCpus_allowed:\t1\n"
      "Cpus_allowed_list:\t0\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
      t.comm(), t.fs().umask(), state, t.tgid(), t.tid(), p.ppid, sig.tracer_pid, c.ruid, c.euid,
      c.suid, c.fsuid, c.rgid, c.egid, c.sgid, c.fsgid, groups, vsize / 1024,
      ResidencyOf(t.shared_mm()).resident * kPageSize / 1024,
      p.threads, sig.pending, sig.shared, sig.blocked, sig.ignored, sig.caught, c.cap_inheritable,
      c.cap_permitted,
      c.cap_effective, c.cap_bounding, c.cap_ambient,
      c.no_new_privs || sc.sync_no_new_privs ? 1 : 0, sc.mode, sc.filter_count());
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
          if (!t || !t->fds_) return Errno(ENOENT);
          SV_ASSIGN_OR_RETURN(FileRef f, t->fds().Get(fd));
          return f->DisplayPath();
        });
        link->set_magic([&k, tid, fd]() -> std::shared_ptr<Dentry> {
          auto t = FindTask(k, tid);
          if (!t || !t->fds_) return nullptr;
          Result<FileRef> f = t->fds().Get(fd);
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

void FillTaskDir(Kernel& k, Vfs& vfs, SynthDir& dir, int tid, bool thread);

InodeRef TaskDir(Kernel& k, Vfs& vfs, int tid, bool thread) {
  auto dir = std::make_shared<SynthDir>(0555);
  dir->set_fs_magic(kProcSuperMagic);
  FillTaskDir(k, vfs, *dir, tid, thread);
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

// A file that is no seq_file (proc_pid_cmdline_ops, environ): lseek sees
// i_size 0.
std::shared_ptr<SynthFile> SizeZeroSeek(std::shared_ptr<SynthFile> f) {
  f->set_seek(SynthSeek::kSizeZero);
  return f;
}

void FillTaskDir(Kernel& k, Vfs& vfs, SynthDir& dir, int tid, bool thread) {
  dir.Add("stat", TaskFile(k, tid, [&k, thread](Task& t) { return StatText(k, t, thread); }));
  dir.Add("status", TaskFile(k, tid, [&k](Task& t) { return StatusText(k, t); }));
  dir.Add("statm", TaskFile(k, tid, [](Task& t) { return StatmText(t); }));
  dir.Add("comm", TaskFile(k, tid, [](Task& t) { return t.comm() + "\n"; }, 0644));
  dir.Add("cmdline", SizeZeroSeek(TaskFile(k, tid, [](Task& t) -> std::string {
            if (!t.shared_mm()) return "";
            auto l = t.mm().layout();
            return ReadMemRange(t, l.arg_start, l.arg_end);
          })));
  dir.Add("environ", SizeZeroSeek(TaskFile(k, tid, [](Task& t) -> std::string {
            if (!t.shared_mm()) return "";
            auto l = t.mm().layout();
            return ReadMemRange(t, l.env_start, l.env_end);
          }, 0400)));
  dir.Add("maps", TaskFile(k, tid, [](Task& t) -> std::string {
            return t.shared_mm() ? t.mm().MapsText() : "";
          }));
  dir.Add("mounts", SynthFile::Text([&vfs] { return vfs.MountsText(); }));
  dir.Add("mountinfo", SynthFile::Text([&vfs] { return vfs.MountInfoText(); }));
  dir.Add("exe", std::make_shared<SynthSymlink>([&k, tid]() -> Result<std::string> {
            auto t = FindTask(k, tid);
            if (!t || !t->shared_mm()) return Errno(ENOENT);
            std::string p = t->mm().layout().exe_path;
            if (p.empty()) return Errno(ENOENT);
            return p;
          }));
  dir.Add("cwd", std::make_shared<SynthSymlink>([&k, tid]() -> Result<std::string> {
            auto t = FindTask(k, tid);
            if (!t || !t->fs_) return Errno(ENOENT);
            return t->fs().cwd()->Path();
          }));
  dir.Add("root", SynthSymlink::Fixed("/"));
  dir.Add("fd", FdDir(k, tid));
  dir.Add("fdinfo", NewFdInfoDir(k, vfs, tid));
  dir.Add("ns", NewNsDir());
  dir.Add("mem", NewMemInode(k, tid));
  if (InodeRef net = NewNetDir(k)) dir.Add("net", net);
  AddTaskInfoFiles(k, dir, tid);
  if (!thread) {
    auto tasks = std::make_shared<SynthDir>(0555);
    tasks->SetDynamic(
        [&k, &vfs, tid](std::string_view name) -> Result<InodeRef> {
          int id;
          if (!absl::SimpleAtoi(absl::string_view(name.data(), name.size()), &id)) {
            return Errno(ENOENT);
          }
          auto t = FindTask(k, id);
          if (!t || t->tgid() != tid) return Errno(ENOENT);
          return TaskDir(k, vfs, id, true);
        },
        [&k, tid]() {
          std::vector<DirEntry> out;
          absl::MutexLock l(&k.mu());
          for (auto& t : k.Tasks()) {
            if (t->tgid() == tid) {
              out.push_back({absl::StrCat(t->tid()), static_cast<uint64_t>(t->tid()), DT_DIR});
            }
          }
          return out;
        });
    dir.Add("task", tasks);
  }
}

Result<InodeRef> PidLookup(Kernel& k, Vfs& vfs, std::string_view name) {
  int id;
  if (!absl::SimpleAtoi(absl::string_view(name.data(), name.size()), &id) || id <= 0) {
    return Errno(ENOENT);
  }
  auto t = FindTask(k, id);
  if (!t) return Errno(ENOENT);
  // /proc/TID works for any thread, shown as its own process directory.
  return TaskDir(k, vfs, id, false);
}

std::string UptimeText(Kernel& k) {
  double up = static_cast<double>(NowMonoNs() - k.boot_time_ns()) / 1e9;
  return absl::StrFormat("%.2f %.2f\n", up, up);
}

std::string LoadavgText(Kernel& k) {
  int n = 0, last = 0;
  {
    absl::MutexLock l(&k.mu());
    auto tasks = k.Tasks();
    n = static_cast<int>(tasks.size());
    for (auto& t : tasks) last = std::max(last, t->tid());
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

InodeRef NewProcFs(Kernel& k, Vfs& vfs) {
  auto root = std::make_shared<SynthDir>(0555);
  root->set_fs_magic(kProcSuperMagic);
  root->Add("self", std::make_shared<SynthSymlink>([]() -> Result<std::string> {
              Task* t = CurrentTask();
              if (!t) return Errno(ENOENT);
              return absl::StrCat(t->tgid());
            }));
  root->Add("thread-self", std::make_shared<SynthSymlink>([]() -> Result<std::string> {
              Task* t = CurrentTask();
              if (!t) return Errno(ENOENT);
              return absl::StrCat(t->tgid(), "/task/", t->tid());
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
  kernel_dir->Add("hostname", SynthFile::Text([&k] { return k.uts().hostname() + "\n"; }));
  kernel_dir->Add("domainname", SynthFile::Text([&k] { return k.uts().domainname() + "\n"; }));
  kernel_dir->Add("osrelease",
                  SynthFile::Text([] { return std::string(Kernel::kRelease) + "\n"; }));
  kernel_dir->Add("ostype", SynthFile::Text([] { return std::string("Linux\n"); }));
  kernel_dir->Add("version",
                  SynthFile::Text([] { return std::string(Kernel::kVersion) + "\n"; }));
  kernel_dir->Add("pid_max", SynthFile::Text([] { return std::string("32768\n"); }));
  kernel_dir->Add("ngroups_max", SynthFile::Text([] { return std::string("65536\n"); }));
  for (const char* name : {"shmmax", "shmall", "shmmni", "sem", "msgmax", "msgmnb", "msgmni"}) {
    kernel_dir->Add(name, SynthFile::Text([n = std::string(name)] { return IpcLimitText(n); }));
  }
  random->Add("uuid", SynthFile::Text([] { return RandomUuid(); }));
  random->Add("boot_id", SynthFile::Text([boot_id] { return boot_id; }));
  kernel_dir->Add("random", random);
  sys->Add("kernel", kernel_dir);
  auto vm = std::make_shared<SynthDir>(0555);
  vm->Add("overcommit_memory", SynthFile::Text([] { return std::string("0\n"); }));
  vm->Add("max_map_count", SynthFile::Text([] { return std::string("65530\n"); }));
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
  sys->Add("fs", fs);
  // lseek: /proc/sys files are proc_sys_file_operations (no seq_file).
  sys->SetSubtreeSeek(SynthSeek::kSizeZero, SynthSeek::kSizeZero);
  root->Add("sys", sys);
  auto sysvipc = std::make_shared<SynthDir>(0555);
  sysvipc->Add("sem", SynthFile::Text([&k] { return k.ipc().sems().ProcText(); }));
  sysvipc->Add("shm", SynthFile::Text([&k] { return k.ipc().shms().ProcText(k); }));
  sysvipc->Add("msg", SynthFile::Text([&k] { return k.ipc().msgs().ProcText(); }));
  root->Add("sysvipc", sysvipc);
  auto seedvisor_dir = std::make_shared<SynthDir>(0555);
  seedvisor_dir->Add("fork_generation", NewForkGenerationInode(k));
  root->Add("seedvisor", seedvisor_dir);

  root->SetDynamic([&k, &vfs](std::string_view name) { return PidLookup(k, vfs, name); },
                   [&k]() {
                     std::vector<DirEntry> out;
                     absl::MutexLock l(&k.mu());
                     for (auto& t : k.Tasks()) {
                       if (t->tid() == t->tgid()) {
                         out.push_back({absl::StrCat(t->tid()),
                                        static_cast<uint64_t>(t->tid()), DT_DIR});
                       }
                     }
                     return out;
                   });
  // lseek: the rest are seq_files; the directories have i_size 0.
  root->SetSubtreeSeek(SynthSeek::kSizeZero, SynthSeek::kSeqFile);
  return root;
}

}  // namespace seedvisor::sentry
