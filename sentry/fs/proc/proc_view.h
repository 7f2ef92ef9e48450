// ProcView: one procfs instance (NewProcFs) as its process directories see
// it: the pid namespace whose processes it shows, by their ids there, and
// its /proc/PID and /proc/PID/task/TID directories (task_dir.cc).
//
//   auto view = std::make_shared<ProcView>(k, vfs, pid_ns);
//   root->SetDynamic([view](std::string_view name) { return PidLookup(view, name); },
//                    [&k, ns] { return ProcessEntries(k, ns.get()); });
#ifndef SEEDVISOR_SENTRY_FS_PROC_PROC_VIEW_H_
#define SEEDVISOR_SENTRY_FS_PROC_PROC_VIEW_H_

#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class Kernel;
class PidNamespace;
class Task;
class Vfs;
struct ProcView;

// statfs(2)'s f_type of /proc and of its process directories.
inline constexpr long kProcSuperMagic = 0x9fa0;

// The directories of live tasks, kept while their task lives so that a
// path looked up twice gives the same inode (and inode number) both times,
// as Linux's dentry cache keeps /proc/PID's. A tid reused by a new task
// gets a new directory. Entries of tasks that are gone are dropped when
// the cache has grown to twice the live ones.
class TaskDirCache {
 public:
  InodeRef Get(const std::shared_ptr<ProcView>& view, Kernel& k, const std::shared_ptr<Task>& t,
               bool thread);

 private:
  struct Entry {
    std::weak_ptr<Task> task;
    InodeRef dir;
  };
  void Prune();
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
  int GlobalOf(int local);
  Kernel& k;
  Vfs& vfs;
  const std::shared_ptr<PidNamespace> ns;
  TaskDirCache dirs;
};

// /proc/<name>: the directory of the task whose id in the view's namespace
// `name` is (any thread's, shown as its own process); ENOENT for none.
Result<InodeRef> PidLookup(const std::shared_ptr<ProcView>& view, std::string_view name);
// /proc's process entries: the ids in `ns` of the thread group leaders
// there (inode number: the global id).
std::vector<DirEntry> ProcessEntries(Kernel& k, const PidNamespace* ns);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_PROC_PROC_VIEW_H_
