#include "sentry/ipc/shm.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/shm.h>

#include <map>
#include <set>
#include <vector>

#include "absl/strings/str_format.h"
#include "sentry/fs/tmpfs/shmem.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {
namespace {

constexpr uint64_t kShmLba = kPageSize;  // SHMLBA on x86-64

// struct shmid64_ds, shminfo64 and shm_info on x86-64.
struct GuestShmidDs {
  GuestIpcPerm perm;
  uint64_t segsz;
  int64_t atime, dtime, ctime;
  int32_t cpid, lpid;
  uint64_t nattch;
  uint64_t unused4, unused5;
};
static_assert(sizeof(GuestShmidDs) == 112);

struct GuestShminfo {
  uint64_t shmmax, shmmin, shmmni, shmseg, shmall;
  uint64_t unused1, unused2, unused3, unused4;
};
static_assert(sizeof(GuestShminfo) == 72);

struct GuestShmInfo {
  int32_t used_ids;
  uint64_t shm_tot, shm_rss, shm_swp, swap_attempts, swap_successes;
};
static_assert(sizeof(GuestShmInfo) == 48);

// An attach: a description of a segment's shmem object that names it.
class ShmFile : public TmpfsFile {
 public:
  ShmFile(int flags, std::shared_ptr<ShmSegment> seg)
      : TmpfsFile(flags | O_LARGEFILE, seg->data->dentry(), seg->data->inode()),
        seg_(std::move(seg)),
        name_(absl::StrFormat("/SYSV%08x (deleted)", static_cast<uint32_t>(seg_->perm.key))) {}
  std::string DisplayPath() const override { return name_; }
  const std::shared_ptr<ShmSegment> &segment() const { return seg_; }

 private:
  const std::shared_ptr<ShmSegment> seg_;
  const std::string name_;
};

const ShmFile *AsShm(const FileRef &f) { return dynamic_cast<const ShmFile *>(f.get()); }

// shm_nattch of every segment: the VMAs that map it, in every address space.
std::map<const ShmSegment *, uint64_t> CountAttaches(Kernel &k) {
  std::set<std::shared_ptr<MM>> mms;
  {
    absl::MutexLock l(&k.mu());
    for (auto &t : k.Tasks()) {
      if (!t->exited() && t->mm_ != nullptr) mms.insert(t->mm_);
    }
  }
  std::map<const ShmSegment *, uint64_t> n;
  for (auto &mm : mms) {
    for (const Vma &v : mm->Vmas()) {
      if (const ShmFile *f = AsShm(v.file)) ++n[f->segment().get()];
    }
  }
  return n;
}

// The mode shmctl and /proc show: SHM_DEST once removed.
uint32_t ModeOf(const ShmSegment &s) { return s.perm.mode | (s.perm.deleted ? SHM_DEST : 0); }

}  // namespace

Result<int> ShmRegistry::Get(Task &t, int32_t key, uint64_t size, int flags) {
  std::lock_guard l(mu_);
  auto check = [&](ShmSegment &s) -> Status {
    if (s.size < size) return Errno(EINVAL);
    return {};
  };
  auto make = [&]() -> Result<std::shared_ptr<ShmSegment>> {
    if (size < 1 || size > kShmMax) return Errno(EINVAL);
    // hugetlb_file_setup(): the reservation fails, the sandbox has no
    // hugetlb pool (see SysMmap's MAP_HUGETLB).
    if ((flags & SHM_HUGETLB) && !(flags & SHM_NORESERVE)) return Errno(ENOMEM);
    if (!(flags & SHM_NORESERVE)) SV_TRY(CheckShmemReserve(size));
    uint64_t pages = PageRoundUp(size) / kPageSize;
    uint64_t total = pages;
    reg_.ForEach([&](int, ShmSegment &s) { total += PageRoundUp(s.size) / kPageSize; });
    if (total > kShmAll) return Errno(ENOSPC);
    auto s = std::make_shared<ShmSegment>();
    SV_ASSIGN_OR_RETURN(
        s->data, NewShmemFile(size, "/SYSV (deleted)", O_RDWR, t.creds().euid, t.creds().egid));
    s->size = size;
    s->cpid = t.tg().pid_numbers;
    s->ctime = IpcNow();
    return s;
  };
  SV_ASSIGN_OR_RETURN(auto seg,
                      reg_.GetOrCreate(t.creds(), key, flags & ~SHM_HUGETLB, check, make));
  return seg->perm.id;
}

Result<uint64_t> ShmRegistry::Attach(Task &t, int id, UserAddr addr, int flags) {
  uint64_t a = addr.value();
  int mflags = MAP_SHARED;
  if (a != 0) {
    if (a & (kShmLba - 1)) {
      if (!(flags & SHM_RND)) return Errno(EINVAL);
      a &= ~(kShmLba - 1);
      if (a == 0 && (flags & SHM_REMAP)) return Errno(EINVAL);
    }
    mflags |= (flags & SHM_REMAP) ? MAP_FIXED : MAP_FIXED_NOREPLACE;
  } else if (flags & SHM_REMAP) {
    return Errno(EINVAL);
  }
  std::shared_ptr<ShmSegment> seg;
  {
    std::lock_guard l(mu_);
    SV_ASSIGN_OR_RETURN(seg, reg_.Get(id));
    SV_TRY(seg->perm.Check(t.creds(), (flags & SHM_RDONLY) ? 0400 : 0600));
    seg->atime = IpcNow();
    seg->lpid = t.tg().pid_numbers;
  }
  int prot =
      PROT_READ | ((flags & SHM_RDONLY) ? 0 : PROT_WRITE) | ((flags & SHM_EXEC) ? PROT_EXEC : 0);
  MmapRequest req;
  req.addr = UserAddr(a);
  req.length = seg->size;
  req.prot = prot;
  req.flags = mflags;
  req.file = std::make_shared<ShmFile>((flags & SHM_RDONLY) ? O_RDONLY : O_RDWR, seg);
  Result<UserAddr> r = t.mm().Mmap(req);
  // do_shmat(): an attach over an existing mapping without SHM_REMAP is EINVAL.
  if (!r.ok() && r.error().value() == EEXIST) return Errno(EINVAL);
  if (!r.ok()) return r.error();
  return r->value();
}

Status ShmRegistry::Detach(Task &t, UserAddr addr) {
  const uint64_t a = addr.value();
  if (a & (kShmLba - 1)) return Errno(EINVAL);
  // ksys_shmdt(): the attach that starts at `addr`, then every VMA of the
  // same attach within the segment's size.
  const ShmFile *attach = nullptr;
  std::shared_ptr<ShmSegment> seg;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const Vma &v : t.mm().Vmas()) {
    const ShmFile *f = AsShm(v.file);
    if (attach == nullptr) {
      if (f == nullptr || v.start != a || v.offset != 0) continue;
      attach = f;
      seg = f->segment();
    }
    if (f != attach) continue;
    if (v.start >= a + PageRoundUp(seg->size)) break;
    if (v.start - a != v.offset) continue;
    ranges.push_back({v.start, v.end - v.start});
  }
  if (attach == nullptr) return Errno(EINVAL);
  for (auto [start, len] : ranges) SV_TRY(t.mm().Munmap(UserAddr(start), len));
  std::lock_guard l(mu_);
  seg->dtime = IpcNow();
  seg->lpid = t.tg().pid_numbers;
  return {};
}

bool ShmRegistry::RemovedOnceUnmapped(Task &t, const FileRef &f, uint64_t start, uint64_t end) {
  const ShmFile *attach = AsShm(f);
  if (attach == nullptr) return false;
  {
    std::lock_guard l(mu_);
    if (!attach->segment()->perm.deleted) return false;
  }
  // The attaches the unmap drops: this address space's VMAs of the segment
  // wholly inside the range (one that sticks out is split, and its rest
  // stays attached).
  uint64_t dropped = 0;
  for (const Vma &v : t.mm().Vmas()) {
    const ShmFile *g = AsShm(v.file);
    if (g != nullptr && g->segment() == attach->segment() && v.start >= start && v.end <= end) {
      ++dropped;
    }
  }
  return CountAttaches(t.kernel())[attach->segment().get()] <= dropped;
}

Result<uint64_t> ShmRegistry::Ctl(Task &t, int id, int cmd, UserAddr buf) {
  const Credentials &c = t.creds();
  if (cmd == IPC_INFO) {
    GuestShminfo info{};
    info.shmmax = kShmMax;
    info.shmmin = 1;
    info.shmmni = kShmMni;
    info.shmseg = kShmMni;
    info.shmall = kShmAll;
    int max;
    {
      std::lock_guard l(mu_);
      max = reg_.MaxIndex();
    }
    SV_TRY(t.CopyOutObj(buf, info));
    return static_cast<uint64_t>(max);
  }
  if (cmd == SHM_INFO) {
    GuestShmInfo info{};
    int max;
    {
      std::lock_guard l(mu_);
      reg_.ForEach([&](int, ShmSegment &s) {
        ++info.used_ids;
        info.shm_tot += PageRoundUp(s.size) / kPageSize;
      });
      max = reg_.MaxIndex();
    }
    SV_TRY(t.CopyOutObj(buf, info));
    return static_cast<uint64_t>(max);
  }
  if (cmd == IPC_STAT || cmd == SHM_STAT || cmd == SHM_STAT_ANY) {
    auto counts = CountAttaches(t.kernel());
    GuestShmidDs ds{};
    int ret = 0;
    {
      std::lock_guard l(mu_);
      std::shared_ptr<ShmSegment> s;
      if (cmd == IPC_STAT) {
        SV_ASSIGN_OR_RETURN(s, reg_.Get(id));
      } else {
        SV_ASSIGN_OR_RETURN(s, reg_.GetByIndex(id));
        ret = s->perm.id;
      }
      if (cmd != SHM_STAT_ANY) SV_TRY(s->perm.Check(c, 0400));
      ds.perm = s->perm.ToGuest();
      ds.perm.mode = ModeOf(*s);
      ds.segsz = s->size;
      ds.atime = s->atime;
      ds.dtime = s->dtime;
      ds.ctime = s->ctime;
      // As the caller's pid namespace numbered them (pid_vnr()).
      ds.cpid = PidNumbers::In(s->cpid.get(), t.pid_ns());
      ds.lpid = PidNumbers::In(s->lpid.get(), t.pid_ns());
      ds.nattch = counts[s.get()];
    }
    SV_TRY(t.CopyOutObj(buf, ds));
    return static_cast<uint64_t>(ret);
  }
  GuestShmidDs in{};
  if (cmd == IPC_SET) SV_TRY(t.CopyInObj(buf, &in));
  std::lock_guard l(mu_);
  SV_ASSIGN_OR_RETURN(std::shared_ptr<ShmSegment> s, reg_.Get(id));
  switch (cmd) {
    case IPC_SET:
      SV_TRY(s->perm.CheckOwner(c));
      s->perm.Set(in.perm);
      s->ctime = IpcNow();
      return 0;
    case IPC_RMID:
      SV_TRY(s->perm.CheckOwner(c));
      reg_.Remove(*s);
      s->ctime = IpcNow();
      return 0;
    case SHM_LOCK:
    case SHM_UNLOCK:
      if (!c.HasCap(CAP_IPC_LOCK)) {
        if (c.euid != s->perm.uid && c.euid != s->perm.cuid) return Errno(EPERM);
      }
      if (cmd == SHM_LOCK) {
        s->perm.mode |= SHM_LOCKED;
      } else {
        s->perm.mode &= ~static_cast<uint32_t>(SHM_LOCKED);
      }
      return 0;
    default:
      return Errno(EINVAL);
  }
}

std::string ShmRegistry::ProcText(Kernel &k, const PidNamespace *reader) {
  auto counts = CountAttaches(k);
  std::string out =
      "       key      shmid perms                  size  cpid  "
      "lpid nattch   uid   gid  cuid  "
      "cgid      atime      dtime      ctime                   "
      "rss                  swap\n";
  std::lock_guard l(mu_);
  reg_.ForEach([&](int, ShmSegment &s) {
    const IpcPerm &p = s.perm;
    // sysvipc_shm_proc_show(): the pids as the reader's pid namespace
    // numbered them.
    out += absl::StrFormat(
        "%10d %10d  %4o %21u %5d %5d  %5u %5u %5u %5u %5u "
        "%10d %10d %10d %21u %21u\n",
        p.key, p.id, ModeOf(s), s.size, PidNumbers::In(s.cpid.get(), reader),
        PidNumbers::In(s.lpid.get(), reader), counts[&s], p.uid, p.gid, p.cuid, p.cgid, s.atime,
        s.dtime, s.ctime, 0, 0);
  });
  return out;
}

}  // namespace seedvisor::sentry
