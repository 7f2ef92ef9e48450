// /proc/PID/{personality,timerslack_ns,wchan,io,schedstat,sessionid,
// loginuid} (fs/proc/base.c).
#include <atomic>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

// kstrtoull()/kstrtouint() as the /proc writers parse: decimal, one
// trailing newline allowed.
template <typename T>
Result<T> ParseDecimal(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  T v;
  if (text.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(text[0])) ||
      !absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &v)) {
    return Errno(EINVAL);
  }
  return v;
}

// Another task's timer slack needs CAP_SYS_NICE, to read as to write
// (proc_pid_set_timerslack_ns(), timerslack_ns_show()).
Status TimerSlackAccess(const Task& t) {
  Task* caller = CurrentTask();
  if (caller == nullptr || caller == &t || caller->creds().HasCap(CAP_SYS_NICE)) return {};
  return Errno(EPERM);
}

std::shared_ptr<SynthFile> TimerSlackFile(Kernel& k, int tid) {
  auto f = std::make_shared<SynthFile>(
      [&k, tid]() -> Result<std::string> {
        auto t = FindTask(k, tid);
        if (!t) return Errno(ESRCH);
        SV_TRY(TimerSlackAccess(*t));
        return absl::StrCat(t->timer_slack_ns(), "\n");
      },
      0666);
  f->set_write([&k, tid](std::string_view text) -> Status {
    SV_ASSIGN_OR_RETURN(uint64_t ns, ParseDecimal<uint64_t>(text));
    auto t = FindTask(k, tid);
    if (!t) return Errno(ESRCH);
    SV_TRY(TimerSlackAccess(*t));
    t->set_timer_slack_ns(ns);  // 0: the inherited default
    return {};
  });
  return f;
}

// do_io_accounting(): the thread's own counts, or the process's (its live
// threads plus those that ended and its reaped children). read_bytes and
// write_bytes are storage I/O, which the sandbox's files never cause
// themselves (the host's page cache stands between).
std::string IoText(Kernel& k, Task& t, bool thread) {
  IoCounters c;
  if (thread) {
    c = t.io();
  } else {
    absl::MutexLock l(&k.mu());
    c = t.tg().io;
    for (Task* each : t.tg().tasks) c.Add(each->io());
  }
  return absl::StrFormat(
      "rchar: %u\nwchar: %u\nsyscr: %u\nsyscw: %u\nread_bytes: 0\nwrite_bytes: 0\n"
      "cancelled_write_bytes: 0\n",
      c.rchar, c.wchar, c.syscr, c.syscw);
}

// One counter per sandbox, as the kernel has one (audit_set_loginuid()).
std::atomic<uint32_t> next_session{0};

// proc_loginuid_write(): only the task itself; an unset loginuid may be
// set by anyone, a set one changed only with CAP_AUDIT_CONTROL. Setting a
// valid uid opens a new audit session.
Status WriteLoginuid(Kernel& k, int tid, std::string_view text) {
  auto t = FindTask(k, tid);
  if (!t) return Errno(ESRCH);
  Task* caller = CurrentTask();
  if (caller != nullptr && caller != t.get()) return Errno(EPERM);
  SV_ASSIGN_OR_RETURN(uint32_t uid, ParseDecimal<uint32_t>(text));
  if (t->loginuid() != Task::kAuditUnset && caller != nullptr &&
      !caller->creds().HasCap(CAP_AUDIT_CONTROL)) {
    return Errno(EPERM);
  }
  uint32_t session = Task::kAuditUnset;
  if (uid != Task::kAuditUnset) {
    session = next_session.fetch_add(1, std::memory_order_relaxed) + 1;
    if (session == Task::kAuditUnset) session = next_session.fetch_add(1) + 1;
  }
  t->set_login(uid, session);
  return {};
}

}  // namespace

void AddTaskStatFiles(Kernel& k, SynthDir& dir, int tid, bool thread) {
  // PTRACE_MODE_ATTACH_FSCREDS (proc_pid_personality()).
  dir.Add("personality", PrivateTaskFile(k, tid, [](Task& t) {
            return absl::StrFormat("%08x\n", t.personality());
          }, 0400));
  if (!thread) dir.Add("timerslack_ns", TimerSlackFile(k, tid));  // tgid_base_stuff only
  // proc_pid_wchan(): the symbol of the kernel function a sleeping task
  // waits in, "0" when it runs or the caller may not know. The sentry has
  // no kernel symbols to name: always "0", without a newline.
  dir.Add("wchan", TaskFile(k, tid, [](Task&) { return std::string("0"); }));
  dir.Add("io", PrivateTaskFile(k, tid, [&k, thread](Task& t) { return IoText(k, t, thread); },
                                0400));
  // proc_pid_schedstat(): time on the CPU (the guest's, measured by the
  // platform), time waiting for one (not measured: 0), and the times the
  // task was put on one (here: entered guest code).
  dir.Add("schedstat", TaskFile(k, tid, [&k](Task& t) {
            int64_t ns;
            {
              absl::MutexLock l(&k.mu());
              ns = t.ThreadCpuNsLocked();
            }
            return absl::StrFormat("%d 0 %u\n", ns, t.guest_entries());
          }));
  dir.Add("sessionid", TaskFile(k, tid, [](Task& t) {
            return absl::StrCat(t.audit_sessionid());
          }));
  auto loginuid = TaskFile(k, tid, [](Task& t) { return absl::StrCat(t.loginuid()); }, 0644);
  loginuid->set_write([&k, tid](std::string_view text) { return WriteLoginuid(k, tid, text); });
  dir.Add("loginuid", loginuid);
}

}  // namespace seedvisor::sentry
