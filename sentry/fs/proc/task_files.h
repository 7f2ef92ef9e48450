// The /proc/PID files that task_dir.cc puts together: what a program
// reads about its own process (stat, status, auxv, limits, oom_score,
// cgroup, the id maps), its fds (fd, fdinfo), its namespaces (ns) and its
// memory (mem, smaps); and the parts of /proc's root made elsewhere (sys).
//
//   FillTaskDir(...) { ...; AddTaskInfoFiles(k, dir, tid);
//                      dir.Add("fdinfo", NewFdInfoDir(k, vfs, tid, ns)); ... }
//
// Every file looks its task up again at open: ESRCH once the task is gone.
#ifndef SEEDVISOR_SENTRY_FS_PROC_TASK_FILES_H_
#define SEEDVISOR_SENTRY_FS_PROC_TASK_FILES_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sentry/fs/synth/synth.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class Kernel;
class MM;
class PidNamespace;
class Task;
class Vfs;

// The task with thread id `tid`, or null; a zombie's (or a process's
// exited leader thread's) until the process is reaped, as Linux keeps it.
std::shared_ptr<Task> FindTask(Kernel& k, int tid);
// `t`'s address space (null once it exited), read under Kernel::mu(),
// under which exit and exec replace it. Call without that lock.
std::shared_ptr<MM> MmOf(Task& t);
// Whether the task reading /proc (none: the sentry itself) may look into
// `t` as ptrace_may_access(PTRACE_MODE_READ_FSCREDS) allows.
bool CallerMayReadTask(const Task& t);
// The text of the host's file `path`; "" if it cannot be read (proc.cc).
std::string HostFileText(const char* path);
// A file whose text `f` makes from the task when it is opened.
std::shared_ptr<SynthFile> TaskFile(Kernel& k, int tid, std::function<std::string(Task&)> f,
                                    mode_t perm = 0444);

// A directory of the task's fds (fd/, fdinfo/): the fd a child's `name`
// names (ENOENT unless it is open), and one entry per open fd, its inode
// number `ino_base` + fd.
Result<int> OpenFdNamed(Kernel& k, int tid, std::string_view name);
std::vector<DirEntry> FdDirEntries(Kernel& k, int tid, uint64_t ino_base, unsigned char type);

// The same, opened only by a caller that may look into the task
// (CallerMayReadTask; EACCES otherwise): environ, maps, io, personality...
std::shared_ptr<SynthFile> PrivateTaskFile(Kernel& k, int tid, std::function<std::string(Task&)> f,
                                           mode_t perm = 0444);
// personality, timerslack_ns, wchan, io, schedstat, sessionid, loginuid
// (task_stats.cc); `thread`: the files of /proc/PID/task/TID.
void AddTaskStatFiles(Kernel& k, SynthDir& dir, int tid, bool thread);
// smaps and smaps_rollup (smaps.cc).
void AddSmapsFiles(Kernel& k, SynthDir& dir, int tid);

// stat, status and statm, their ids those of `ns`, /proc's pid namespace
// (task_status.cc).
void AddTaskStatusFiles(Kernel& k, SynthDir& dir, int tid, bool thread,
                        std::shared_ptr<PidNamespace> ns);
// fd/N: a magic link to each open file (fd_dir.cc).
InodeRef NewFdDir(Kernel& k, int tid);
// auxv, limits, oom_score, oom_score_adj, cgroup, uid_map, gid_map,
// setgroups, timens_offsets (task_info.cc).
void AddTaskInfoFiles(Kernel& k, SynthDir& dir, int tid);
// fdinfo/N: pos, flags, mnt_id, ino and the file's own lines (fdinfo.cc);
// a pidfd's ids are those of `ns`, /proc's pid namespace (null: the
// sandbox's).
InodeRef NewFdInfoDir(Kernel& k, Vfs& vfs, int tid, std::shared_ptr<PidNamespace> ns);
// ns/{cgroup,ipc,mnt,net,pid,pid_for_children,time,time_for_children,user,
// uts}: "net:[4026531833]"; one set of namespaces per sandbox (ns.cc).
InodeRef NewNsDir(Kernel& k, int tid);
// mem: the process's memory at file offset = address (mem.cc).
InodeRef NewMemInode(Kernel& k, int tid);
// pagemap: which pages are present, frame numbers 0 (pagemap.cc).
InodeRef NewPagemapInode(Kernel& k, int tid);
// net/{dev,route,tcp,udp} of the sandbox's own stack; null unless
// --network=sandbox (net.cc).
InodeRef NewNetDir(Kernel& k);
// /proc/sys: kernel, vm, fs and net (sys.cc).
InodeRef NewSysDir(Kernel& k);
// /proc/sys/net/ipv4 with --network=sandbox (the sandbox stack's sysctls:
// ping_group_range), else null (net.cc).
InodeRef NewSysNetIpv4Dir(Kernel& k);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_PROC_TASK_FILES_H_
