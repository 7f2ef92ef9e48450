// /proc/PID/ns/* (fs/proc/namespaces.c): a magic link per namespace type
// whose target text is "TYPE:[INODE]" and whose target is the namespace's
// nsfs inode (what setns(2) takes).
//
// The sandbox is one set of namespaces, its guest's initial ones: every
// process shows the same inodes, for as long as the sandbox lives (and in
// its forks). They are the numbers Linux gives its initial namespaces
// (include/linux/proc_ns.h, PROC_*_INIT_INO).
#include "absl/strings/str_cat.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

namespace {

struct NsLink {
  const char* name;  // the link's name under ns/
  const char* type;  // what its target text says
  uint64_t ino;
};

constexpr NsLink kNsLinks[] = {
    {"cgroup", "cgroup", 0xEFFFFFFB},
    {"ipc", "ipc", 0xEFFFFFFF},
    {"mnt", "mnt", 0xEFFFFFF8},
    {"net", "net", 0xEFFFFFF9},
    {"pid", "pid", 0xEFFFFFFC},
    {"pid_for_children", "pid", 0xEFFFFFFC},
    {"time", "time", 0xEFFFFFFA},
    {"time_for_children", "time", 0xEFFFFFFA},
    {"user", "user", 0xEFFFFFFD},
    {"uts", "uts", 0xEFFFFFFE},
};

// The namespace itself: a read-only file of its inode number. Opening it
// gives a descriptor that fstat()s as the namespace; setns(2) stays EPERM.
class NsInode : public SynthInode {
 public:
  explicit NsInode(uint64_t ino) : SynthInode(S_IFREG | 0444) { st_.st_ino = ino; }
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override {
    if ((flags & O_ACCMODE) != O_RDONLY) return Errno(EACCES);
    return FileRef(std::make_shared<FileDescription>(flags, d));
  }
};

}  // namespace

InodeRef NewNsDir() {
  auto dir = std::make_shared<SynthDir>(0511);
  for (const NsLink& n : kNsLinks) {
    auto link = SynthSymlink::Fixed(absl::StrCat(n.type, ":[", n.ino, "]"));
    auto target = std::make_shared<Dentry>(absl::StrCat(n.type, ":[", n.ino, "]"), nullptr,
                                           std::make_shared<NsInode>(n.ino), nullptr);
    link->set_magic([target] { return target; });
    dir->Add(n.name, link);
  }
  return dir;
}

}  // namespace seedvisor::sentry
