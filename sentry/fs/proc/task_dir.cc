// /proc/PID and /proc/PID/task/TID: the directory of a process or thread,
// kept while its task lives (TaskDirCache), and what it holds.
#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sentry/fs/proc/proc_view.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/kernel/credentials.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/fs_context.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

// Bytes [start, end) of the process's memory, NUL-separated (cmdline/environ).
std::string ReadMemRange(Task& t, UserAddr start, UserAddr end) {
  auto mm = MmOf(t);
  if (!mm || end <= start) return "";
  size_t len = std::min<uint64_t>(end.value() - start.value(), 1 << 20);
  std::string out(len, '\0');
  auto n = mm->CopyInPartial(start, out.data(), len);
  if (!n.ok()) return "";
  out.resize(*n);
  return out;
}

// The ids in `ns` of the tasks `pick` picks, zombies' exited leaders
// included, as directory entries (inode number: the global id).
template <typename Pick>
std::vector<DirEntry> TaskEntries(Kernel& k, const PidNamespace* ns, Pick pick) {
  std::vector<DirEntry> out;
  absl::MutexLock l(&k.mu());
  for (auto& t : k.TasksAndExitedLeadersLocked()) {
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

InodeRef TaskDir(const std::shared_ptr<ProcView>& view, const std::shared_ptr<Task>& t,
                 bool thread) {
  return view->dirs.Get(view, view->k, t, thread);
}

void FillTaskDir(const std::shared_ptr<ProcView>& view, SynthDir& dir, int tid, bool thread) {
  Kernel& k = view->k;
  Vfs& vfs = view->vfs;
  const std::shared_ptr<PidNamespace> ns = view->ns;
  AddTaskStatusFiles(k, dir, tid, thread, ns);
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
            std::shared_ptr<MM> mm = MmOf(t);  // null once it exited
            if (!mm) return "";
            auto l = mm->layout();
            return ReadMemRange(t, l.arg_start, l.arg_end);
          })));
  dir.Add("environ", SizeZeroSeek(PrivateTaskFile(k, tid, [](Task& t) -> std::string {
            std::shared_ptr<MM> mm = MmOf(t);
            if (!mm) return "";
            auto l = mm->layout();
            return ReadMemRange(t, l.env_start, l.env_end);
          }, 0400)));
  dir.Add("maps", PrivateTaskFile(k, tid, [](Task& t) -> std::string {
            std::shared_ptr<MM> mm = MmOf(t);
            return mm ? mm->MapsText() : "";
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
            std::shared_ptr<MM> mm = t ? MmOf(*t) : nullptr;
            if (!mm) return Errno(ENOENT);
            std::string p = mm->layout().exe_path;
            if (p.empty()) return Errno(ENOENT);
            return p;
          }));
  dir.Add("cwd", std::make_shared<SynthSymlink>([&k, tid]() -> Result<std::string> {
            auto t = FindTask(k, tid);
            std::shared_ptr<FsContext> fs = t ? t->shared_fs() : nullptr;
            if (!fs) return Errno(ENOENT);
            return fs->cwd()->Path();
          }));
  // proc_root_link(): none once the task's fs context is gone (a zombie).
  dir.Add("root", std::make_shared<SynthSymlink>([&k, tid]() -> Result<std::string> {
            auto t = FindTask(k, tid);
            if (!t || !t->shared_fs()) return Errno(ENOENT);
            return std::string("/");
          }));
  dir.Add("fd", NewFdDir(k, tid));
  dir.Add("fdinfo", NewFdInfoDir(k, vfs, tid, ns));
  dir.Add("ns", NewNsDir(k, tid));
  dir.Add("mem", NewMemInode(k, tid));
  dir.Add("pagemap", NewPagemapInode(k, tid));
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

}  // namespace

InodeRef TaskDirCache::Get(const std::shared_ptr<ProcView>& view, Kernel& k,
                           const std::shared_ptr<Task>& t, bool thread) {
  std::lock_guard<std::mutex> l(mu_);
  Entry& e = dirs_[{t->tid(), thread}];
  if (e.dir == nullptr || e.task.lock() != t) {
    e.task = t;
    e.dir = NewTaskDir(view, k, t->tid(), thread);
    if (dirs_.size() > 2 * live_mark_ + 64) Prune();
  }
  return e.dir;
}

void TaskDirCache::Prune() {
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    it = it->second.task.expired() ? dirs_.erase(it) : std::next(it);
  }
  live_mark_ = dirs_.size();
}

int ProcView::GlobalOf(int local) {
  if (local <= 0) return 0;
  absl::MutexLock l(&k.mu());
  return Kernel::IdFrom(ns.get(), local);
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

std::vector<DirEntry> ProcessEntries(Kernel& k, const PidNamespace* ns) {
  return TaskEntries(k, ns, [](Task& t) { return t.tid() == t.tgid(); });
}

}  // namespace seedvisor::sentry
