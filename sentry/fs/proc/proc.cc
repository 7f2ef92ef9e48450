#include "sentry/fs/proc/proc.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/fs/proc/fork_generation.h"
#include "sentry/fs/proc/meminfo.h"
#include "sentry/fs/proc/proc_view.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/ipc/ipc_namespace.h"
#include "sentry/kernel/keys/key_proc.h"
#include "sentry/kernel/keys/task_keys.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

std::string HostFileText(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

int64_t NowMonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// The host's /proc/cpuinfo without the flags the sandbox does not give
// its guests: cpuid_fault (arch_prctl(ARCH_SET_CPUID) is ENODEV here, as on
// a CPU without CPUID faulting).
std::string CpuinfoText(const std::string& host) {
  std::string out;
  out.reserve(host.size());
  std::istringstream in(host);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      for (size_t at; (at = line.find(" cpuid_fault")) != std::string::npos;) {
        const size_t end = at + sizeof(" cpuid_fault") - 1;
        if (end == line.size() || line[end] == ' ') {
          line.erase(at, end - at);
        } else {
          break;
        }
      }
    }
    out += line;
    out += '\n';
  }
  return out;
}

// The sandbox's uptime in the reader's time namespace (uptime_proc_show():
// timens_add_boottime()).
std::string UptimeText(Kernel& k) {
  Task* reader = CurrentTask();
  const int64_t off =
      reader != nullptr ? TimeNamespace::OffsetOf(reader->time_ns().get(), CLOCK_BOOTTIME) : 0;
  double up = static_cast<double>(NowMonoNs() - k.boot_time_ns() + off) / 1e9;
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
  root->Add("cpuinfo", SynthFile::Text([] { return CpuinfoText(HostFileText("/proc/cpuinfo")); }));
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
  root->Add("sys", NewSysDir(k));
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
  // keyrings(7): the keys the reader may view, and the users' quotas.
  root->Add("keys", SynthFile::Text([&k] { return ProcKeysText(KeysOf(k), CurrentTask()); }));
  root->Add("key-users", SynthFile::Text([&k] { return ProcKeyUsersText(KeysOf(k)); }));
  auto seedvisor_dir = std::make_shared<SynthDir>(0555);
  seedvisor_dir->Add("fork_generation", NewForkGenerationInode(k));
  root->Add("seedvisor", seedvisor_dir);

  root->SetDynamic(
      [view](std::string_view name) { return PidLookup(view, name); },
      [&k, ns]() { return ProcessEntries(k, ns.get()); });
  // lseek: the rest are seq_files; the directories have i_size 0.
  root->SetSubtreeSeek(SynthSeek::kSizeZero, SynthSeek::kSeqFile);
  return root;
}

}  // namespace seedvisor::sentry
