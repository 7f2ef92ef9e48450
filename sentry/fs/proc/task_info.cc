// /proc/PID/{auxv,limits,oom_score,oom_score_adj,cgroup,uid_map,gid_map,
// setgroups,timens_offsets} (fs/proc/base.c, kernel/user_namespace.c).
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <time.h>

#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/ptrace_access.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/kernel/user_namespace.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

std::shared_ptr<Task> FindTask(Kernel& k, int tid) {
  absl::MutexLock l(&k.mu());
  return k.TaskOrExitedLeaderLocked(tid);
}

std::shared_ptr<MM> MmOf(Task& t) {
  absl::MutexLock l(&t.kernel().mu());
  return t.shared_mm();
}

bool CallerMayReadTask(const Task& t) {
  Task* caller = CurrentTask();
  return caller == nullptr || MayPtraceAccess(*caller, t.tg(), t.creds(), PtraceCreds::kFs);
}

namespace {

// ENOENT-like ESRCH once the task is gone, as Linux's reads say; EACCES
// for a `checked` file the caller may not look into.
std::shared_ptr<SynthFile> NewTaskFile(Kernel& k, int tid, std::function<std::string(Task&)> f,
                                       mode_t perm, bool checked) {
  return std::make_shared<SynthFile>(
      [&k, tid, checked, f = std::move(f)]() -> Result<std::string> {
        auto t = FindTask(k, tid);
        if (!t) return Errno(ESRCH);
        if (checked && !CallerMayReadTask(*t)) return Errno(EACCES);
        return f(*t);
      },
      perm);
}

}  // namespace

std::shared_ptr<SynthFile> TaskFile(Kernel& k, int tid, std::function<std::string(Task&)> f,
                                    mode_t perm) {
  return NewTaskFile(k, tid, std::move(f), perm, false);
}

std::shared_ptr<SynthFile> PrivateTaskFile(Kernel& k, int tid, std::function<std::string(Task&)> f,
                                           mode_t perm) {
  return NewTaskFile(k, tid, std::move(f), perm, true);
}

namespace {

// proc_pid_limits()'s rows, in RLIMIT_* order; a null unit leaves the
// column out.
struct LimitRow {
  const char* name;
  const char* unit;
};
constexpr LimitRow kLimitRows[RLIM_NLIMITS] = {
    {"Max cpu time", "seconds"},     {"Max file size", "bytes"},
    {"Max data size", "bytes"},      {"Max stack size", "bytes"},
    {"Max core file size", "bytes"}, {"Max resident set", "bytes"},
    {"Max processes", "processes"},  {"Max open files", "files"},
    {"Max locked memory", "bytes"},  {"Max address space", "bytes"},
    {"Max file locks", "locks"},     {"Max pending signals", "signals"},
    {"Max msgqueue size", "bytes"},  {"Max nice priority", nullptr},
    {"Max realtime priority", nullptr}, {"Max realtime timeout", "us"},
};

std::string LimitValue(rlim_t v) {
  return v == RLIM_INFINITY ? std::string("unlimited") : absl::StrCat(v);
}

std::string LimitsText(Kernel& k, Task& t) {
  std::array<struct rlimit, RLIM_NLIMITS> r;
  {
    absl::MutexLock l(&k.mu());
    r = t.tg().rlimits;
  }
  std::string out = absl::StrFormat("%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit",
                                    "Hard Limit", "Units");
  for (int i = 0; i < RLIM_NLIMITS; ++i) {
    absl::StrAppendFormat(&out, "%-25s %-20s %-20s ", kLimitRows[i].name,
                          LimitValue(r[i].rlim_cur), LimitValue(r[i].rlim_max));
    if (kLimitRows[i].unit) absl::StrAppendFormat(&out, "%-10s", kLimitRows[i].unit);
    out += "\n";
  }
  return out;
}

std::string AuxvBytes(Task& t) {
  std::shared_ptr<MM> mm = MmOf(t);  // null once it exited
  if (!mm) return "";
  std::vector<uint64_t> auxv = mm->layout().auxv;  // AT_NULL pair included
  return std::string(reinterpret_cast<const char*>(auxv.data()), auxv.size() * sizeof(uint64_t));
}

// Pages of the host process that holds the task's memory which are
// resident: the best measure of the guest's RSS we have.
uint64_t ResidentPages(Task& t) {
  auto mm = MmOf(t);
  if (!mm) return 0;
  std::string path = absl::StrCat("/proc/", mm->address_space().host_pid(), "/statm");
  FILE* f = std::fopen(path.c_str(), "re");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  if (std::fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident;
}

// proc_oom_score(): (1000 + badness * 1000 / totalpages) * 2 / 3, where the
// badness is the RSS in pages plus oom_score_adj * totalpages / 1000, and
// oom_score_adj -1000 (unkillable) shows 0.
std::string OomScoreText(Kernel& k, Task& t) {
  int adj;
  {
    absl::MutexLock l(&k.mu());
    adj = t.tg().oom_score_adj;
  }
  if (adj == -1000) return "0\n";
  struct sysinfo si {};
  sysinfo(&si);
  int64_t total = static_cast<int64_t>((si.totalram + si.totalswap) * si.mem_unit / kPageSize);
  if (total <= 0) total = 1;
  int64_t badness = static_cast<int64_t>(ResidentPages(t)) + adj * total / 1000;
  int64_t points = (1000 + badness * 1000 / total) * 2 / 3;
  return absl::StrCat(std::max<int64_t>(points, 0), "\n");
}

// oom_score_adj_write() and __set_oom_adj(): a number in [-1000, 1000]
// (kstrtoint after strstrip: EINVAL otherwise); a writer without
// CAP_SYS_RESOURCE may not go below oom_score_adj_min (EACCES), and a
// writer with it sets that floor.
Status WriteOomScoreAdj(Kernel& k, int tid, std::string_view text) {
  if (text.size() > 12) text = text.substr(0, 12);  // PROC_NUMBUF - 1
  int v;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())),
                        &v) ||
      v < -1000 || v > 1000) {
    return Errno(EINVAL);
  }
  Task* writer = CurrentTask();
  const bool privileged = writer && writer->creds().HasCap(CAP_SYS_RESOURCE);
  auto t = FindTask(k, tid);
  if (!t) return Errno(ESRCH);
  absl::MutexLock l(&k.mu());
  ThreadGroup& tg = t->tg();
  if (v < tg.oom_score_adj_min && !privileged) return Errno(EACCES);
  tg.oom_score_adj = v;
  if (privileged) tg.oom_score_adj_min = v;
  return {};
}

// /proc/PID/uid_map and gid_map: the maps of the task's user namespace
// (sentry/kernel/user_namespace.h), the initial one's the identity over
// all 32-bit ids, which is written already (so map_write() refuses
// another write: EPERM).
std::shared_ptr<SynthFile> IdMapFile(Kernel& k, int tid, UserNamespace::Map map) {
  auto f = TaskFile(k, tid, [map](Task& t) {
    Task* reader = CurrentTask();
    std::shared_ptr<UserNamespace> viewer = reader != nullptr ? UserNsOf(*reader) : nullptr;
    return UserNamespace::MapText(UserNsOf(t).get(), map, viewer.get());
  }, 0644);
  f->set_write([&k, tid, map](std::string_view text) -> Status {
    std::shared_ptr<Task> t = FindTask(k, tid);
    if (t == nullptr) return Errno(ESRCH);
    std::shared_ptr<UserNamespace> ns = UserNsOf(*t);
    Task* writer = CurrentTask();
    if (ns == nullptr || writer == nullptr) return Errno(EPERM);
    if (int err = ns->WriteMap(map, text, 0, writer->creds()); err != 0) return Errno(err);
    return {};
  });
  return f;
}

}  // namespace

void AddTaskInfoFiles(Kernel& k, SynthDir& dir, int tid) {
  dir.Add("auxv", PrivateTaskFile(k, tid, AuxvBytes, 0400));
  dir.Add("limits", TaskFile(k, tid, [&k](Task& t) { return LimitsText(k, t); }));
  dir.Add("oom_score", TaskFile(k, tid, [&k](Task& t) { return OomScoreText(k, t); }));
  auto adj = TaskFile(k, tid, [&k](Task& t) {
    absl::MutexLock l(&k.mu());
    return absl::StrCat(t.tg().oom_score_adj, "\n");
  }, 0644);
  adj->set_write([&k, tid](std::string_view text) { return WriteOomScoreAdj(k, tid, text); });
  dir.Add("oom_score_adj", adj);
  // The old interface, -17..15 (oom_adj_read()/oom_adj_write()): 15 is
  // 1000, the rest scale by 1000/17; the same checks as oom_score_adj.
  auto old_adj = TaskFile(k, tid, [&k](Task& t) {
    absl::MutexLock l(&k.mu());
    const int v = t.tg().oom_score_adj;
    return absl::StrCat(v == 1000 ? 15 : v * 17 / 1000, "\n");
  }, 0644);
  old_adj->set_write([&k, tid](std::string_view text) -> Status {
    if (text.size() > 12) text = text.substr(0, 12);
    int v;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())),
                          &v) ||
        v < -17 || v > 15) {
      return Errno(EINVAL);
    }
    return WriteOomScoreAdj(k, tid, absl::StrCat(v == 15 ? 1000 : v * 1000 / 17));
  });
  dir.Add("oom_adj", old_adj);
  // The sandbox's root cgroup, as a cgroup namespace shows it (cgroup v2).
  dir.Add("cgroup", TaskFile(k, tid, [](Task&) { return std::string("0::/\n"); }));
  dir.Add("uid_map", IdMapFile(k, tid, UserNamespace::Map::kUid));
  dir.Add("gid_map", IdMapFile(k, tid, UserNamespace::Map::kGid));
  // The initial user namespace's setgroups is "allow" and stays so
  // (proc_setgroups_write(): EPERM).
  auto setgroups = TaskFile(k, tid, [](Task&) { return std::string("allow\n"); }, 0644);
  setgroups->set_write([](std::string_view) -> Status { return Errno(EPERM); });
  dir.Add("setgroups", setgroups);
  // The offsets of the time namespace the task's next children enter
  // (proc_timens_show_offsets()); written before a task enters it, with
  // CAP_SYS_TIME (proc_timens_set_offset()). The initial one's are fixed.
  auto timens = TaskFile(k, tid, [](Task& t) {
    std::shared_ptr<TimeNamespace> ns = t.time_ns_for_children();
    return ns != nullptr ? ns->OffsetsText() : TimeNamespace(0).OffsetsText();
  }, 0644);
  timens->set_write([&k, tid](std::string_view text) -> Status {
    auto t = FindTask(k, tid);
    if (!t) return Errno(ESRCH);
    Task* writer = CurrentTask();
    if (writer != nullptr && !writer->creds().HasCap(CAP_SYS_TIME)) return Errno(EPERM);
    std::shared_ptr<TimeNamespace> ns = t->time_ns_for_children();
    timespec mono, boot;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_BOOTTIME, &boot);
    auto ns_of = [](const timespec& ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; };
    if (ns != nullptr) return ns->WriteOffsets(text, ns_of(mono), ns_of(boot));
    // The initial namespace: the same checks, then EACCES (frozen_offsets).
    SV_TRY(TimeNamespace(0).WriteOffsets(text, ns_of(mono), ns_of(boot)));
    return Errno(EACCES);
  });
  dir.Add("timens_offsets", timens);
}

}  // namespace seedvisor::sentry
