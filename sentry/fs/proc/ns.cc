// /proc/PID/ns/* (fs/proc/namespaces.c): a magic link per namespace type
// whose target text is "TYPE:[INODE]" and whose target is the namespace's
// nsfs inode (what setns(2) takes).
//
// The sandbox is one set of namespaces, its guest's initial ones, except
// UTS, PID, mount, time and user: every process shows the same inodes, for as long as the sandbox
// lives (and in its forks). They are the numbers Linux gives its initial
// namespaces (include/linux/proc_ns.h, PROC_*_INIT_INO). The uts link
// names the task's own UTS namespace (Task::uts(): the initial one or one
// made by CLONE_NEWUTS) and its target carries it, for setns(2); so do the
// pid and pid_for_children links (sentry/kernel/pid_namespace.h), the
// time and time_for_children links (sentry/kernel/time_namespace.h), the
// mnt link (MountNamespace, sentry/vfs/vfs.h) and the user link
// (sentry/kernel/user_namespace.h).
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/resource.h>

#include "absl/strings/str_cat.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/kernel/user_namespace.h"
#include "sentry/vfs/file.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

constexpr uint64_t kInitPidNsIno = 0xEFFFFFFC;
constexpr uint64_t kInitUserNsIno = UserNamespace::kInitIno;

struct NsLink {
  const char* name;  // the link's name under ns/
  const char* type;  // what its target text says
  uint64_t ino;
  int clone_flag;    // its CLONE_NEW* type (setns(2))
};

constexpr NsLink kNsLinks[] = {
    {"cgroup", "cgroup", 0xEFFFFFFB, CLONE_NEWCGROUP},
    {"ipc", "ipc", 0xEFFFFFFF, CLONE_NEWIPC},
    {"mnt", "mnt", 0xEFFFFFF8, CLONE_NEWNS},
    {"net", "net", 0xEFFFFFF9, CLONE_NEWNET},
    {"pid", "pid", kInitPidNsIno, CLONE_NEWPID},
    {"pid_for_children", "pid", kInitPidNsIno, CLONE_NEWPID},
    {"time", "time", 0xEFFFFFFA, CLONE_NEWTIME},
    {"time_for_children", "time", 0xEFFFFFFA, CLONE_NEWTIME},
    {"user", "user", kInitUserNsIno, CLONE_NEWUSER},
    {"uts", "uts", 0xEFFFFFFE, CLONE_NEWUTS},
};

std::shared_ptr<Dentry> NsDentry(const char* type_name, uint64_t ino, int type,
                                 std::shared_ptr<void> ns = nullptr);

// The namespace itself: a read-only file of its inode number. Opening it
// gives a descriptor that fstat()s as the namespace and that setns(2)
// takes (sys_ns.cc).
class NsInode : public SynthInode {
 public:
  NsInode(uint64_t ino, int type, std::shared_ptr<void> ns = nullptr)
      : SynthInode(S_IFREG | 0444), type_(type), ns_(std::move(ns)) {
    st_.st_ino = ino;
  }
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override;
  int NamespaceType() const override { return type_; }
  std::shared_ptr<void> NamespaceObject() const override { return ns_; }

 private:
  const int type_;
  const std::shared_ptr<void> ns_;
};

// An open namespace file: the nsfs ioctls (fs/nsfs.c ns_ioctl()). Every
// namespace but a user namespace is owned by the sandbox's initial user
// namespace (sentry/kernel/user_namespace.h says why), whose owner is uid
// 0 and which has no parent; a user namespace's owner is its parent.
class NsFile : public FileDescription {
 public:
  NsFile(int flags, std::shared_ptr<Dentry> d) : FileDescription(flags, std::move(d)) {}

  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override {
    const auto& inode = static_cast<const NsInode&>(*dentry()->inode());
    const int type = inode.NamespaceType();
    switch (cmd) {
      case NS_GET_NSTYPE:
        return long{type};
      case NS_GET_OWNER_UID: {
        if (type != CLONE_NEWUSER) return Errno(EINVAL);
        // from_kuid_munged() of the owner, as the caller names it.
        auto ns = std::static_pointer_cast<UserNamespace>(inode.NamespaceObject());
        const uid_t owner =
            ns == nullptr ? 0 : UserNamespace::UidSeen(t.creds().user_ns.get(), ns->owner());
        SV_TRY(TaskCopyOut(t, arg, &owner, sizeof(owner)));
        return 0L;
      }
      case NS_GET_USERNS:
        if (type == CLONE_NEWUSER) {
          return UserOwner(t, std::static_pointer_cast<UserNamespace>(inode.NamespaceObject()));
        }
        return UserOwner(t, nullptr, /*is_owner=*/true);
      case NS_GET_PARENT:
        // userns_get_parent(): a user namespace's parent is its owner.
        if (type == CLONE_NEWUSER) {
          return UserOwner(t, std::static_pointer_cast<UserNamespace>(inode.NamespaceObject()));
        }
        if (type != CLONE_NEWPID) return Errno(EINVAL);  // no ->get_parent
        return PidParent(t, std::static_pointer_cast<PidNamespace>(inode.NamespaceObject()));
      default:
        return Errno(ENOTTY);
    }
  }

 private:
  // pidns_get_parent(): the parent of `ns` (null: the sandbox's own,
  // which has none), if it is the caller's pid namespace or below it;
  // EPERM otherwise.
  static Result<long> PidParent(Task& t, const std::shared_ptr<PidNamespace>& ns) {
    if (ns == nullptr) return Errno(EPERM);
    std::shared_ptr<PidNamespace> parent = ns->parent();
    {
      absl::MutexLock l(&t.kernel().mu());
      const PidNamespace* active = t.pid_ns();
      for (const PidNamespace* p = parent.get();; p = p->parent().get()) {
        if (p == active) break;
        if (p == nullptr) return Errno(EPERM);
      }
    }
    const uint64_t ino = parent != nullptr ? parent->ino() : kInitPidNsIno;
    return Install(t, NsDentry("pid", ino, CLONE_NEWPID, std::move(parent)));
  }

  // ns_get_owner(): the user namespace that owns `ns` (its parent; with
  // `is_owner`, `ns` itself), if that is the caller's own or below it;
  // EPERM otherwise (the initial one has no owner).
  static Result<long> UserOwner(Task& t, const std::shared_ptr<UserNamespace>& ns,
                                bool is_owner = false) {
    if (!is_owner && ns == nullptr) return Errno(EPERM);
    std::shared_ptr<UserNamespace> owner = is_owner ? ns : ns->parent();
    if (!UserNamespace::IsAncestor(t.creds().user_ns.get(), owner.get())) return Errno(EPERM);
    const uint64_t ino = UserNamespace::InoOf(owner.get());
    return Install(t, NsDentry("user", ino, CLONE_NEWUSER, std::move(owner)));
  }

  // open_related_ns(): a new close-on-exec descriptor of `d`.
  static Result<long> Install(Task& t, std::shared_ptr<Dentry> d) {
    rlim_t limit;
    {
      absl::MutexLock l(&t.kernel().mu());
      limit = t.tg().rlimits[RLIMIT_NOFILE].rlim_cur;
    }
    if (limit == 0 || limit > (1u << 20)) limit = 1024;
    FileRef f = std::make_shared<NsFile>(O_RDONLY, std::move(d));
    SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(std::move(f), /*cloexec=*/true, 0,
                                                static_cast<int>(limit)));
    return long{fd};
  }
};

Result<FileRef> NsInode::Open(const std::shared_ptr<Dentry>& d, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY) return Errno(EACCES);
  return FileRef(std::make_shared<NsFile>(flags, d));
}

// The nsfs dentry of a namespace: its name is what the ns/ link says.
std::shared_ptr<Dentry> NsDentry(const char* type_name, uint64_t ino, int type,
                                 std::shared_ptr<void> ns) {
  return std::make_shared<Dentry>(absl::StrCat(type_name, ":[", ino, "]"), nullptr,
                                  std::make_shared<NsInode>(ino, type, std::move(ns)), nullptr);
}

// ns/uts of task `tid`: its UTS namespace's inode, looked up at each use.
std::shared_ptr<SynthSymlink> UtsLink(Kernel& k, int tid) {
  auto ns_of = [&k, tid]() -> std::shared_ptr<UtsNames> {
    std::shared_ptr<Task> t = FindTask(k, tid);
    return t != nullptr ? t->shared_uts() : nullptr;
  };
  auto link = std::make_shared<SynthSymlink>([ns_of]() -> Result<std::string> {
    std::shared_ptr<UtsNames> ns = ns_of();
    if (ns == nullptr) return Errno(ENOENT);
    return absl::StrCat("uts:[", ns->ino(), "]");
  });
  link->set_magic([ns_of]() -> std::shared_ptr<Dentry> {
    std::shared_ptr<UtsNames> ns = ns_of();
    if (ns == nullptr) return nullptr;
    const uint64_t ino = ns->ino();
    return NsDentry("uts", ino, CLONE_NEWUTS, std::move(ns));
  });
  return link;
}

// ns/mnt of task `tid`: its mount namespace (its FsContext's).
std::shared_ptr<SynthSymlink> MntLink(Kernel& k, int tid) {
  auto ns_of = [&k, tid]() -> std::shared_ptr<MountNamespace> {
    std::shared_ptr<Task> t = FindTask(k, tid);
    std::shared_ptr<FsContext> fs = t ? t->shared_fs() : nullptr;
    if (fs == nullptr) return nullptr;
    std::shared_ptr<MountNamespace> ns = fs->mnt_ns();
    return ns != nullptr ? ns : k.vfs().init_mount_ns();
  };
  auto link = std::make_shared<SynthSymlink>([ns_of]() -> Result<std::string> {
    std::shared_ptr<MountNamespace> ns = ns_of();
    if (ns == nullptr) return Errno(ENOENT);
    return absl::StrCat("mnt:[", ns->ino(), "]");
  });
  link->set_magic([ns_of]() -> std::shared_ptr<Dentry> {
    std::shared_ptr<MountNamespace> ns = ns_of();
    if (ns == nullptr) return nullptr;
    const uint64_t ino = ns->ino();
    return NsDentry("mnt", ino, CLONE_NEWNS, std::move(ns));
  });
  return link;
}

// ns/pid and ns/pid_for_children of task `tid`: its pid namespace, or
// where its next children go; the sandbox's own is the initial one.
std::shared_ptr<SynthSymlink> PidLink(Kernel& k, int tid, bool for_children) {
  struct Found {
    bool alive = false;
    std::shared_ptr<PidNamespace> ns;
    uint64_t ino() const { return ns != nullptr ? ns->ino() : kInitPidNsIno; }
  };
  auto ns_of = [&k, tid, for_children]() -> Found {
    std::shared_ptr<Task> t = FindTask(k, tid);
    if (t == nullptr) return {};
    absl::MutexLock l(&k.mu());
    return {true, for_children ? t->pid_ns_for_children_ : t->tg().pid_ns};
  };
  auto link = std::make_shared<SynthSymlink>([ns_of]() -> Result<std::string> {
    Found f = ns_of();
    if (!f.alive) return Errno(ENOENT);
    return absl::StrCat("pid:[", f.ino(), "]");
  });
  link->set_magic([ns_of]() -> std::shared_ptr<Dentry> {
    Found f = ns_of();
    if (!f.alive) return nullptr;
    const uint64_t ino = f.ino();
    return NsDentry("pid", ino, CLONE_NEWPID, std::move(f.ns));
  });
  return link;
}

// ns/time and ns/time_for_children of task `tid`: its time namespace, or
// the one its next children enter; the initial one has no object.
std::shared_ptr<SynthSymlink> TimeLink(Kernel& k, int tid, bool for_children) {
  struct Found {
    bool alive = false;
    std::shared_ptr<TimeNamespace> ns;
  };
  auto ns_of = [&k, tid, for_children]() -> Found {
    std::shared_ptr<Task> t = FindTask(k, tid);
    if (t == nullptr) return {};
    return {true, for_children ? t->time_ns_for_children() : t->time_ns()};
  };
  auto link = std::make_shared<SynthSymlink>([ns_of]() -> Result<std::string> {
    Found f = ns_of();
    if (!f.alive) return Errno(ENOENT);
    return absl::StrCat("time:[", TimeNamespace::InoOf(f.ns.get()), "]");
  });
  link->set_magic([ns_of]() -> std::shared_ptr<Dentry> {
    Found f = ns_of();
    if (!f.alive) return nullptr;
    const uint64_t ino = TimeNamespace::InoOf(f.ns.get());
    return NsDentry("time", ino, CLONE_NEWTIME, std::move(f.ns));
  });
  return link;
}

// ns/user of task `tid`: its credentials' user namespace; the initial one
// has no object.
std::shared_ptr<SynthSymlink> UserLink(Kernel& k, int tid) {
  struct Found {
    bool alive = false;
    std::shared_ptr<UserNamespace> ns;
  };
  auto ns_of = [&k, tid]() -> Found {
    std::shared_ptr<Task> t = FindTask(k, tid);
    if (t == nullptr) return {};
    return {true, UserNsOf(*t)};
  };
  auto link = std::make_shared<SynthSymlink>([ns_of]() -> Result<std::string> {
    Found f = ns_of();
    if (!f.alive) return Errno(ENOENT);
    return absl::StrCat("user:[", UserNamespace::InoOf(f.ns.get()), "]");
  });
  link->set_magic([ns_of]() -> std::shared_ptr<Dentry> {
    Found f = ns_of();
    if (!f.alive) return nullptr;
    const uint64_t ino = UserNamespace::InoOf(f.ns.get());
    return NsDentry("user", ino, CLONE_NEWUSER, std::move(f.ns));
  });
  return link;
}

}  // namespace

InodeRef NewNsDir(Kernel& k, int tid) {
  auto dir = std::make_shared<SynthDir>(0511);
  for (const NsLink& n : kNsLinks) {
    if (n.clone_flag == CLONE_NEWUTS) {
      dir->Add(n.name, UtsLink(k, tid));
      continue;
    }
    if (n.clone_flag == CLONE_NEWNS) {
      dir->Add(n.name, MntLink(k, tid));
      continue;
    }
    if (n.clone_flag == CLONE_NEWPID) {
      dir->Add(n.name, PidLink(k, tid, std::string_view(n.name) == "pid_for_children"));
      continue;
    }
    if (n.clone_flag == CLONE_NEWUSER) {
      dir->Add(n.name, UserLink(k, tid));
      continue;
    }
    if (n.clone_flag == CLONE_NEWTIME) {
      dir->Add(n.name, TimeLink(k, tid, std::string_view(n.name) == "time_for_children"));
      continue;
    }
    auto link = SynthSymlink::Fixed(absl::StrCat(n.type, ":[", n.ino, "]"));
    auto target = NsDentry(n.type, n.ino, n.clone_flag);
    link->set_magic([target] { return target; });
    dir->Add(n.name, link);
  }
  return dir;
}

}  // namespace seedvisor::sentry
