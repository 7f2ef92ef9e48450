// Vfs entry points that take a Task: dirfd handling, the task's credentials,
// and Vfs::Create (which mounts /proc over the kernel's tasks).
#include <fcntl.h>
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "sentry/fs/dev/dev.h"
#include "sentry/fs/devpts/devpts.h"
#include "sentry/fs/host/host.h"
#include "sentry/fs/overlay/overlay.h"
#include "sentry/fs/proc/proc.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/kernel/file_owner.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/fsnotify.h"
#include "sentry/vfs/lease_time.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

void InstallKernelHooks() {
  TaskHooks h;
  h.copy_out = [](Task& t, UserAddr a, const void* src, size_t n) { return t.CopyOut(a, src, n); };
  h.copy_in = [](Task& t, UserAddr a, void* dst, size_t n) { return t.CopyIn(a, dst, n); };
  h.block_on_fd = [](Task& t, int fd, short ev, const timespec* deadline) {
    return t.BlockOnFd(fd, ev, deadline);
  };
  h.park_interrupted = [](Task& t) { return t.ParkInterrupted(); };
  h.notify = [](Task& t) { t.Notify(); };
  h.send_sigpipe = [](Task& t) {
    siginfo_t info{};
    info.si_signo = SIGPIPE;
    info.si_code = SI_USER;
    absl::MutexLock l(&t.kernel().mu());
    t.kernel().SendTaskSignal(t, info).ok();
  };
  h.send_sigio = SendSigio;
  h.id_in = [](Task& t, int global) {
    absl::MutexLock l(&t.kernel().mu());
    return Kernel::IdIn(t.pid_ns(), global);
  };
  h.foreground_group = [](Task& t, int local) {
    absl::MutexLock l(&t.kernel().mu());
    return t.kernel().ForegroundGroupLocked(t.pid_ns(), local, t.tg().sid);
  };
  h.current_task_killed = [] {
    Task* t = CurrentTask();
    return t != nullptr && t->FatalSignalPending();
  };
  InstallTaskHooks(h);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Vfs>> Vfs::Create(Kernel& k, const VfsOptions& o) {
  // Host pipes raise SIGPIPE in the sentry when a guest writes to a pipe with
  // no reader; the guest gets EPIPE (and SIGPIPE from the dispatcher) instead.
  signal(SIGPIPE, SIG_IGN);
  InstallKernelHooks();
  auto vfs = Build(&k, o);
  if (!vfs.ok()) return vfs.status();
  Vfs* v = vfs->get();
  auto devpts = std::make_shared<Mount>(
      "devpts", "devpts", "rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666", DevptsRoot());
  absl::Status s = v->MountAt("/dev/pts", std::move(devpts));
  if (!s.ok()) return s;
  SetControllingTtyHook(OpenControllingPty);
  s = v->MountAt("/proc", std::make_shared<Mount>("proc", "proc", "rw,nosuid,nodev,noexec",
                                                  NewProcFs(k, *v, nullptr)));
  if (!s.ok()) return s;
  if (o.read_only_root) v->init_ns_->root_mount_->set_read_only();
  return vfs;
}

absl::StatusOr<std::shared_ptr<Mount>> Vfs::AddContainerRoot(
    std::string_view id, const std::string& host_root, std::shared_ptr<PidNamespace> pid_ns) {
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("container id \"", std::string(id),
                                                   "\" is not a plain name"));
  }
  if (kernel_ == nullptr) return absl::InternalError("a container root needs the sandbox's kernel");
  // The directory that holds every container root: a tmpfs of its own,
  // made on first use (root-only, so the pause container's guest, which
  // shares the sandbox's root, cannot wander in unless it is root).
  DentryRef dir;
  {
    absl::StatusOr<DentryRef> d = ExistingPath(kContainersDir, "container roots");
    if (!d.ok()) return d.status();
    if (*d && (*d)->IsMountRoot()) dir = *d;
  }
  if (!dir) {
    absl::Status s = MountAt(kContainersDir, std::make_shared<Mount>("tmpfs", "none", "rw,mode=700",
                                                                     NewTmpfs(0700)));
    if (!s.ok()) return s;
  }
  const std::string at = absl::StrCat(kContainersDir, "/", std::string(id));
  {
    std::lock_guard l(mounts_mu_);
    if (container_roots_.count(id)) {
      return absl::AlreadyExistsError(absl::StrCat("container \"", std::string(id),
                                                   "\" already has a root in this sandbox"));
    }
  }
  auto host = NewHostFs(host_root);
  if (!host.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("root ", host_root, ": ", host.status().message()));
  }
  auto root = std::make_shared<Mount>("overlay", "overlay", "rw,relatime",
                                      NewOverlay(NewTmpfs(0755), *host));
  if (absl::Status s = MountAt(at, root); !s.ok()) return s;
  {
    std::lock_guard l(mounts_mu_);
    container_roots_[std::string(id)] = root->root();
  }
  absl::Status s = MountAt(at + "/dev", std::make_shared<Mount>("tmpfs", "none", "rw,nosuid", NewDevFs()));
  if (s.ok()) {
    s = MountAt(at + "/dev/shm", std::make_shared<Mount>("tmpfs", "none", "rw,nosuid,nodev",
                                                         NewTmpfs(01777)));
  }
  if (s.ok()) {
    // One devpts instance per sandbox, as Create mounts it.
    auto devpts = std::make_shared<Mount>(
        "devpts", "devpts", "rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666", DevptsRoot());
    s = MountAt(at + "/dev/pts", std::move(devpts));
  }
  if (s.ok()) {
    s = MountAt(at + "/proc", std::make_shared<Mount>("proc", "proc", "rw,nosuid,nodev,noexec",
                                                      NewProcFs(*kernel_, *this, pid_ns)));
  }
  if (!s.ok()) {
    RemoveContainerRoot(id);
    return s;
  }
  return root;
}

void Vfs::RemoveContainerRoot(std::string_view id) {
  std::lock_guard l(mounts_mu_);
  auto it = container_roots_.find(id);
  if (it == container_roots_.end()) return;
  const Mount* root = it->second->mount();
  container_roots_.erase(it);
  MountNamespace& ns = *init_ns_;
  for (auto m = ns.mounts_.begin(); m != ns.mounts_.end();) {
    if (MountBelow(m->get(), root)) {
      if ((*m)->mountpoint()) ns.mounted_at_.Erase((*m)->mountpoint().get());
      retired_.push_back(std::move(*m));
      m = ns.mounts_.erase(m);
    } else {
      ++m;
    }
  }
}

FsCreds Vfs::CredsOf(const Task& t) {
  const Credentials& c = t.creds();
  FsCreds f;
  f.uid = c.fsuid;
  f.gid = c.fsgid;
  f.groups = c.groups;
  f.dac_override = c.HasCap(CAP_DAC_OVERRIDE);
  f.dac_read_search = c.HasCap(CAP_DAC_READ_SEARCH);
  f.fowner = c.HasCap(CAP_FOWNER);
  return f;
}

Result<ResolveContext> Vfs::ContextAt(Task& t, int dirfd, std::string_view path) {
  // One host thread drives one task: /proc/self resolves to this one.
  SetCurrentTask(&t);
  ResolveContext c;
  c.root = t.fs().root();
  c.ns = t.fs().mnt_ns();
  c.creds = CredsOf(t);
  c.umask = t.fs().umask();
  c.landlock = t.creds().landlock;
  if (!path.empty() && path[0] == '/') {
    c.start = c.root;
    return c;
  }
  if (dirfd == AT_FDCWD) {
    c.start = t.fs().cwd();
    return c;
  }
  SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(dirfd));
  if (!f->dentry()) return Errno(ENOTDIR);
  if (!path.empty() && f->dentry()->inode()->Type() != S_IFDIR) return Errno(ENOTDIR);
  c.start = f->dentry();
  return c;
}

Result<DentryRef> Vfs::ResolveAt(Task& t, int dirfd, std::string_view path, int at_flags) {
  if (path.empty()) {
    if (!(at_flags & AT_EMPTY_PATH)) return Errno(ENOENT);
    SV_ASSIGN_OR_RETURN(ResolveContext c, ContextAt(t, dirfd, path));
    if (!c.start) return Errno(ENOENT);
    return c.start;
  }
  SV_ASSIGN_OR_RETURN(ResolveContext c, ContextAt(t, dirfd, path));
  return Resolve(c, path, !(at_flags & AT_SYMLINK_NOFOLLOW));
}

Result<FileRef> Vfs::OpenAt(Task& t, int dirfd, std::string_view path, int flags, mode_t mode) {
  SV_ASSIGN_OR_RETURN(ResolveContext c, ContextAt(t, dirfd, path));
  c.task = &t;
  return Open(c, path, flags, mode);
}

Result<FileRef> Vfs::OpenExecutable(Task& t, std::string_view path) {
  SV_ASSIGN_OR_RETURN(ResolveContext c, ContextAt(t, AT_FDCWD, path));
  SV_ASSIGN_OR_RETURN(DentryRef d, Resolve(c, path, true));
  SV_ASSIGN_OR_RETURN(struct stat st, d->inode()->Stat());
  // do_open_execat(): only regular files, and X permission for the caller.
  if (!S_ISREG(st.st_mode)) return Errno(EACCES);
  SV_TRY(CheckAccess(c.creds, st, X_OK));
  // An exec's open (FMODE_READ with __FMODE_EXEC): Landlock's file_open
  // hook asks for READ_FILE and EXECUTE.
  SV_TRY(LandlockCheckPath(c.landlock.get(), d,
                           kLandlockAccessFsReadFile | kLandlockAccessFsExecute));
  SV_ASSIGN_OR_RETURN(FileRef f, d->inode()->Open(d, O_RDONLY));
  // do_dentry_open()'s break_lease(), as any read-only open: the exec
  // waits for a write lease's holder (ExecBreaksAWriteLease).
  SV_TRY(BreakLeasesForOpen(t, *f, O_RDONLY, /*truncate=*/false));
  // do_open_execat()'s fsnotify_open(): FS_OPEN with FS_OPEN_EXEC.
  FsnotifyFile(*f, IN_OPEN | kFsnotifyOpenExec);
  return f;
}

}  // namespace seedvisor::sentry
