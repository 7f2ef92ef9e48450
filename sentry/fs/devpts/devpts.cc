#include "sentry/fs/devpts/devpts.h"

#include <sys/sysmacros.h>

#include <cstdlib>
#include <memory>
#include <map>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "sentry/fs/devpts/pty_file.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

namespace {

constexpr int kPtsMajor = 136;  // UNIX98_PTY_SLAVE_MAJOR
constexpr gid_t kTtyGid = 5;    // the gid=5,mode=620 runtimes mount devpts with
const dev_t kDevptsDev = makedev(0, 0x40);
constexpr int kMaxPtys = 4096;  // /proc/sys/kernel/pty/max is larger; enough here

struct Registry {
  std::mutex mu;
  std::map<int, std::shared_ptr<Pty>> ptys;  // by index, while the master is open
  std::vector<std::weak_ptr<Dentry>> mount_roots;
};

Registry& Reg() {
  static Registry* r = new Registry;
  return *r;
}

std::vector<std::shared_ptr<Pty>> AllPtys() {
  std::lock_guard l(Reg().mu);
  std::vector<std::shared_ptr<Pty>> v;
  for (auto& [i, p] : Reg().ptys) v.push_back(p);
  return v;
}

// Kernel::SessionEndHook: under Kernel::mu() (before Reg().mu and each
// pty's, the lock order).
void EndSession(Kernel& k, const PidNumbers& session) {
  for (auto& p : AllPtys()) p->SessionLeaderExitedLocked(k, session);
}

// /dev/ptmx: a new pty with the lowest free index, and its master.
Result<FileRef> OpenPtmx(const std::shared_ptr<Dentry>& d, int flags) {
  Task* t = CurrentTask();
  Kernel* k = t ? &t->kernel() : nullptr;
  if (k != nullptr) k->set_session_end_hook(&EndSession);
  uid_t uid = 0;
  if (t != nullptr) uid = t->creds().fsuid;
  std::shared_ptr<Pty> pty;
  {
    std::lock_guard l(Reg().mu);
    int index = 0;
    while (Reg().ptys.count(index)) index++;
    if (index >= kMaxPtys) return Errno(ENOSPC);
    SV_ASSIGN_OR_RETURN(pty, Pty::Create(index, k));
    std::weak_ptr<Pty> weak = pty;
    auto node = std::make_shared<SynthDevice>(
        [weak](const std::shared_ptr<Dentry>& nd, int fl) -> Result<FileRef> {
          auto p = weak.lock();
          if (!p) return Errno(EIO);
          return OpenReplica(p, nd, fl, CurrentTask());
        },
        makedev(kPtsMajor, index), 0620, kDevptsDev);
    node->set_owner(uid, kTtyGid);
    pty->set_node(std::move(node));
    Reg().ptys[index] = pty;
  }
  // The master is never a controlling terminal.
  return FileRef(std::make_shared<PtyMasterFile>(flags & ~(O_CREAT | O_NOCTTY), d, pty));
}

// A Mount of the devpts root was made with root dentry `root` (the
// sandbox's, a container's, a namespace's copy, a bind): its cached
// /dev/pts/N dentries are dropped when pty N goes, so a new pty N is found.
void AddDevptsMount(const std::shared_ptr<Dentry>& root) {
  std::lock_guard l(Reg().mu);
  std::vector<std::weak_ptr<Dentry>>& roots = Reg().mount_roots;
  std::erase_if(roots, [](const std::weak_ptr<Dentry>& w) { return w.expired(); });
  roots.push_back(root);
}

// The devpts root directory: it registers each mount of itself.
class DevptsDir : public SynthDir {
 public:
  using SynthDir::SynthDir;
  void Mounted(const std::shared_ptr<Dentry>& root) override { AddDevptsMount(root); }
};

}  // namespace

void ReleasePty(int index) {
  std::vector<std::shared_ptr<Dentry>> roots;
  {
    std::lock_guard l(Reg().mu);
    Reg().ptys.erase(index);
    for (auto& w : Reg().mount_roots) {
      if (auto r = w.lock()) roots.push_back(std::move(r));
    }
  }
  // A file still open on the old node keeps its dentry, as after unlink.
  for (auto& r : roots) r->Forget(absl::StrCat(index));
}

bool SessionHasPty(const PidNumbers* sid) {
  for (auto& p : AllPtys()) {
    if (p->ControlsSession(sid)) return true;
  }
  return false;
}

bool ControllingPtyOf(const PidNumbers* sid, dev_t* dev,
                      std::shared_ptr<const PidNumbers>* fg_pgrp) {
  for (auto& p : AllPtys()) {
    if (p->ControlsSession(sid)) {
      *dev = makedev(kPtsMajor, p->index());
      *fg_pgrp = p->foreground_pgrp();
      return true;
    }
  }
  return false;
}

Result<FileRef> OpenControllingPty(const std::shared_ptr<Dentry>& d, int flags) {
  Task* t = CurrentTask();
  if (t == nullptr) return Errno(ENXIO);
  std::shared_ptr<const PidNumbers> sid;
  {
    absl::MutexLock l(&t->kernel().mu());
    sid = t->kernel().NumbersOfLocked(t->tg().sid);
  }
  for (auto& p : AllPtys()) {
    if (p->ControlsSession(sid.get())) return OpenReplica(p, d, flags | O_NOCTTY, t);
  }
  return Errno(ENXIO);
}

InodeRef DevptsRoot() {
  static InodeRef root = [] {
    auto dir = std::make_shared<DevptsDir>(0755, kDevptsDev);
    dir->set_fs_magic(0x1cd1);  // DEVPTS_SUPER_MAGIC
    dir->Add("ptmx", std::make_shared<SynthDevice>(OpenPtmx, makedev(5, 2), 0666, kDevptsDev));
    dir->SetDynamic(
        [](std::string_view name) -> Result<InodeRef> {
          std::string s(name);
          char* end = nullptr;
          long i = strtol(s.c_str(), &end, 10);
          if (s.empty() || *end != '\0' || i < 0 || (s.size() > 1 && s[0] == '0')) {
            return Errno(ENOENT);
          }
          std::lock_guard l(Reg().mu);
          auto it = Reg().ptys.find(static_cast<int>(i));
          if (it == Reg().ptys.end()) return Errno(ENOENT);
          return it->second->node();
        },
        [] {
          std::vector<DirEntry> out;
          for (auto& p : AllPtys()) {
            uint64_t ino = 0;
            if (auto st = p->node()->Stat(); st.ok()) ino = st->st_ino;
            out.push_back({absl::StrCat(p->index()), ino, DT_CHR});
          }
          return out;
        });
    return InodeRef(dir);
  }();
  return root;
}

}  // namespace seedvisor::sentry
