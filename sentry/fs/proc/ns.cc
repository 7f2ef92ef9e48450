// /proc/PID/ns/* (fs/proc/namespaces.c): a magic link per namespace type
// whose target text is "TYPE:[INODE]" and whose target is the namespace's
// nsfs inode (what setns(2) takes).
//
// The sandbox is one set of namespaces, its guest's initial ones: every
// process shows the same inodes, for as long as the sandbox lives (and in
// its forks). They are the numbers Linux gives its initial namespaces
// (include/linux/proc_ns.h, PROC_*_INIT_INO).
#include <sched.h>

#include "absl/strings/str_cat.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

namespace {

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
    {"pid", "pid", 0xEFFFFFFC, CLONE_NEWPID},
    {"pid_for_children", "pid", 0xEFFFFFFC, CLONE_NEWPID},
    {"time", "time", 0xEFFFFFFA, CLONE_NEWTIME},
    {"time_for_children", "time", 0xEFFFFFFA, CLONE_NEWTIME},
    {"user", "user", 0xEFFFFFFD, CLONE_NEWUSER},
    {"uts", "uts", 0xEFFFFFFE, CLONE_NEWUTS},
};

// The namespace itself: a read-only file of its inode number. Opening it
// gives a descriptor that fstat()s as the namespace and that setns(2)
// takes (sys_ns.cc).
class NsInode : public SynthInode {
 public:
  NsInode(uint64_t ino, int type) : SynthInode(S_IFREG | 0444), type_(type) { st_.st_ino = ino; }
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override {
    if ((flags & O_ACCMODE) != O_RDONLY) return Errno(EACCES);
    return FileRef(std::make_shared<FileDescription>(flags, d));
  }
  int NamespaceType() const override { return type_; }

 private:
  const int type_;
};

}  // namespace

InodeRef NewNsDir() {
  auto dir = std::make_shared<SynthDir>(0511);
  for (const NsLink& n : kNsLinks) {
    auto link = SynthSymlink::Fixed(absl::StrCat(n.type, ":[", n.ino, "]"));
    auto target = std::make_shared<Dentry>(absl::StrCat(n.type, ":[", n.ino, "]"), nullptr,
                                           std::make_shared<NsInode>(n.ino, n.clone_flag), nullptr);
    link->set_magic([target] { return target; });
    dir->Add(n.name, link);
  }
  return dir;
}

}  // namespace seedvisor::sentry
