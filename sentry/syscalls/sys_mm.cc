// Memory: brk, mmap and friends.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <utility>

#include "sentry/fs/tmpfs/shmem.h"
#include "sentry/ipc/ipc_namespace.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_mlock.h"

namespace seedvisor::sentry {

namespace {

// /dev/zero (mmap_zero()): a private mapping of it is anonymous memory, a
// shared one a new shmem object, as MAP_ANONYMOUS would make them.
bool IsDevZero(FileDescription& f) {
  Result<struct stat> st = f.Stat();
  return st.ok() && S_ISCHR(st->st_mode) && st->st_rdev == makedev(1, 5);
}

// RLIMIT_DATA, which brk and private writable mappings count against
// (read as the other per-call limits are, without Kernel::mu(): not on
// the mmap path's every call).
rlimit DataLimit(Task& t) { return t.tg().rlimits[RLIMIT_DATA]; }

}  // namespace

SyscallReturn SysBrk(Task& t, const SyscallArgs& a) {
  // Brk(0) is below any heap's start: it moves nothing and returns the break.
  const uint64_t old_brk = t.mm().Brk(UserAddr(0), DataLimit(t)).value();
  const uint64_t brk = t.mm().Brk(a.Addr(0), DataLimit(t)).value();
  // What the heap gained or lost has the default memory policy: do_brk_flags()
  // does not extend a heap VMA that has one.
  if (brk != old_brk) {
    const uint64_t lo = PageRoundUp(std::min(brk, old_brk));
    const uint64_t hi = PageRoundUp(std::max(brk, old_brk));
    MemPolicyRemapped(t, 0, 0, lo, hi - lo);
  }
  return brk;
}

SyscallReturn SysMmap(Task& t, const SyscallArgs& a) {
  const int prot = a.Int(2);
  const int flags = a.Int(3);
  const int fd = a.Int(4);
  const uint64_t offset = a.Ulong(5);
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP)) {
    return Errno(EINVAL);
  }
  int type = flags & MAP_TYPE;
  if (type != MAP_PRIVATE && type != MAP_SHARED && type != MAP_SHARED_VALIDATE) {
    return Errno(EINVAL);
  }
  MmapRequest req;
  req.addr = a.Addr(0);
  req.length = a.Ulong(1);
  req.prot = prot;
  req.flags = (flags & ~MAP_TYPE) | (type == MAP_PRIVATE ? MAP_PRIVATE : MAP_SHARED);
  req.offset = offset;
  bool anonymous = flags & MAP_ANONYMOUS;
  // do_mmap(): a shared mapping of a file not open for writing can never
  // be made writable (VM_MAYWRITE cleared; mprotect(2)'s EACCES), which
  // for /dev/zero's shmem object is its open mode.
  bool may_write = true;
  // do_mmap(): MAP_SHARED_VALIDATE is for files only.
  if (anonymous && type == MAP_SHARED_VALIDATE) return Errno(EINVAL);
  if (!anonymous) {
    SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(fd));
    if (f->flags() & O_PATH) return Errno(EBADF);  // fdget() finds no file
    // ksys_mmap_pgoff(): MAP_HUGETLB on a file that is not on hugetlbfs.
    if (flags & MAP_HUGETLB) return Errno(EINVAL);
    // do_mmap(): a zero length is EINVAL before the file is looked at;
    // MAP_SHARED_VALIDATE refuses the flags it does not know
    // (LEGACY_MAP_MASK; MAP_SYNC only on DAX files, which the sandbox has
    // none of) with EOPNOTSUPP.
    if (req.length == 0) return Errno(EINVAL);
    constexpr int kMapUninitialized = 0x4000000;  // not in glibc's headers
    constexpr int kLegacyMapMask = MAP_SHARED | MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS |
                                   MAP_DENYWRITE | MAP_EXECUTABLE | kMapUninitialized |
                                   MAP_GROWSDOWN | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE |
                                   MAP_NONBLOCK | MAP_STACK | MAP_HUGETLB;
    if (type == MAP_SHARED_VALIDATE && (flags & ~kLegacyMapMask)) return Errno(EOPNOTSUPP);
    // mmap(2): EACCES unless the file's open mode allows the mapping.
    if (!f->readable()) return Errno(EACCES);
    if (type != MAP_PRIVATE && (prot & PROT_WRITE) && !f->writable()) return Errno(EACCES);
    if (type != MAP_PRIVATE && (prot & PROT_WRITE) && (f->flags() & O_APPEND)) {
      return Errno(EACCES);
    }
    if (IsDevZero(*f)) {
      anonymous = true;
      may_write = f->writable();
      req.flags |= MAP_ANONYMOUS;
    } else {
      req.file = std::move(f);
    }
  }
  if (anonymous && (flags & MAP_HUGETLB)) {
    // ksys_mmap_pgoff(): a huge page size the host has no hstate for is
    // EINVAL; then the reservation fails, as on a host with
    // vm.nr_hugepages = 0: the sandbox has no hugetlb pool (its
    // /proc/meminfo says so). MAP_NORESERVE makes no reservation; it gets
    // ordinary pages where Linux would SIGBUS on the first touch.
    const int size_log = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
    if (size_log != 0 && size_log != 21 && size_log != 30) return Errno(EINVAL);
    if (!(flags & MAP_NORESERVE)) return Errno(ENOMEM);
    req.flags &= ~(MAP_HUGETLB | (MAP_HUGE_MASK << MAP_HUGE_SHIFT));
  }
  if (anonymous) {
    req.offset = 0;
    if (type != MAP_PRIVATE) {
      // Shared anonymous memory is a shmem object, as Linux's
      // shmem_zero_setup() makes it: an identity a guest fork shares and a
      // sandbox fork copies (sentry/sfork), which anonymous host memory in
      // the stubs would not have.
      if (req.length == 0) return Errno(EINVAL);
      if (PageRoundUp(req.length) < req.length) return Errno(ENOMEM);
      if (!(flags & MAP_NORESERVE)) SV_TRY(CheckShmemReserve(PageRoundUp(req.length)));
      auto shmem = NewShmemFile(PageRoundUp(req.length), "/dev/zero (deleted)",
                                may_write ? O_RDWR : O_RDONLY, t.creds().euid, t.creds().egid);
      // A full tmpfs fd budget (TmpfsMemfdLimit) is mmap's ENOMEM.
      if (!shmem.ok()) return shmem.error() == Errno(ENOSPC) ? Errno(ENOMEM) : shmem.error();
      req.file = std::move(*shmem);
      req.flags &= ~MAP_ANONYMOUS;
      req.anon_shared = true;
    }
  }
  req.data_limit = DataLimit(t);
  // do_mmap(): MAP_LOCKED needs can_do_mlock(); the limit is MM's.
  if (flags & MAP_LOCKED) {
    if (!CanDoMlock(t)) return Errno(EPERM);
    req.lock = Vma::kLocked;
  }
  req.memlock_limit = MemlockLimit(t);
  SV_ASSIGN_OR_RETURN(UserAddr addr, t.mm().Mmap(req));
  MemPolicyRemapped(t, 0, 0, addr.value(), PageRoundUp(req.length));  // a new VMA: no policy
  return addr.value();
}

SyscallReturn SysRemapFilePages(Task& t, const SyscallArgs& a) {
  // Emulated as Linux has since 4.0 (mm/mmap.c): a new MAP_SHARED|MAP_FIXED
  // mapping of the same file at `pgoff`, over a range of one shared file
  // mapping (or of contiguous VMAs of it alike); EINVAL for anything else.
  if (a.Ulong(2) != 0) return Errno(EINVAL);  // prot: must be 0
  const uint64_t start = a.Addr(0).value() & ~(kPageSize - 1);
  const uint64_t size = a.Ulong(1) & ~(kPageSize - 1);
  const uint64_t pgoff = a.Ulong(3);
  if (start + size <= start) return Errno(EINVAL);
  if (pgoff + size / kPageSize < pgoff) return Errno(EINVAL);
  Vma first;
  if (!t.mm().WithVmaAt(UserAddr(start), [&](const Vma& v) { first = v; })) return Errno(EINVAL);
  if (!(first.flags & MAP_SHARED) || first.file == nullptr) return Errno(EINVAL);
  // The VMAs after it up to start + size: adjacent, of the same file, the
  // same protection and flags.
  for (uint64_t end = first.end; end < start + size;) {
    bool same = false;
    t.mm().WithVmaAt(UserAddr(end), [&](const Vma& v) {
      same =
          v.start == end && v.file == first.file && v.flags == first.flags && v.prot == first.prot;
      end = v.end;
    });
    if (!same) return Errno(EINVAL);
  }
  // file_mmap_ok(): an offset past the largest file is EOVERFLOW.
  constexpr uint64_t kMaxPgoff = static_cast<uint64_t>(INT64_MAX) / kPageSize;
  if (pgoff > kMaxPgoff || size / kPageSize > kMaxPgoff - pgoff) return Errno(EOVERFLOW);
  if (t.kernel().ipc().shms().RemovedOnceUnmapped(t, first.file, start, start + size)) {
    SV_TRY(t.mm().Munmap(UserAddr(start), size));
    return Errno(EINVAL);
  }
  MmapRequest req;
  req.addr = UserAddr(start);
  req.length = size;
  req.prot = first.prot;
  req.flags = MAP_SHARED | MAP_FIXED;
  req.file = first.file;
  req.offset = pgoff * kPageSize;
  req.name = first.name;
  Result<UserAddr> mapped = t.mm().Mmap(req);
  if (!mapped.ok()) return mapped.error();
  return 0;
}

SyscallReturn SysMunmap(Task& t, const SyscallArgs& a) {
  SV_TRY(t.mm().Munmap(a.Addr(0), a.Ulong(1)));
  MemPolicyRemapped(t, a.Ulong(0), PageRoundUp(a.Ulong(1)), 0, 0);
  return 0;
}

SyscallReturn SysMprotect(Task& t, const SyscallArgs& a) {
  int prot = a.Int(2);
  if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP)) {
    return Errno(EINVAL);
  }
  // do_mprotect_pkey(): a length that wraps when page-aligned is ENOMEM.
  uint64_t len = a.Ulong(1);
  if (a.Addr(0).value() % kPageSize == 0 && len != 0 && PageRoundUp(len) < len) {
    return Errno(ENOMEM);
  }
  SV_TRY(t.mm().Mprotect(a.Addr(0), len, prot & (PROT_READ | PROT_WRITE | PROT_EXEC),
                         DataLimit(t)));
  return 0;
}

SyscallReturn SysMremap(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(UserAddr r,
                      t.mm().Mremap(a.Addr(0), a.Ulong(1), a.Ulong(2), a.Int(3), a.Addr(4),
                                    DataLimit(t), MemlockLimit(t)));
  // The VMA's memory policy goes where the VMA goes (copy_vma()); with
  // MREMAP_DONTUNMAP the old range keeps its own as well.
  if (a.Int(3) & MREMAP_DONTUNMAP) {
    mempolicy::WithRanges(t, [&](RangePolicies& p) {
      std::optional<MemPolicy> keep;
      if (const MemPolicy* old = p.At(a.Ulong(0))) keep = *old;
      p.Set(r.value(), r.value() + PageRoundUp(a.Ulong(2)), keep);
    });
  } else {
    MemPolicyRemapped(t, a.Ulong(0), PageRoundUp(a.Ulong(1)), r.value(), PageRoundUp(a.Ulong(2)));
  }
  return r.value();
}

SyscallReturn SysMadvise(Task& t, const SyscallArgs& a) {
  SV_TRY(t.mm().Madvise(a.Addr(0), a.Ulong(1), a.Int(2)));
  return 0;
}

SyscallReturn SysMseal(Task& t, const SyscallArgs& a) {
  SV_TRY(t.mm().Mseal(a.Addr(0), a.Ulong(1), a.Ulong(2)));
  return 0;
}

SyscallReturn SysMsync(Task& t, const SyscallArgs& a) {
  SV_TRY(t.mm().Msync(a.Addr(0), a.Ulong(1), a.Int(2)));
  return 0;
}

SyscallReturn SysMincore(Task& t, const SyscallArgs& a) {
  if (a.Ulong(0) % kPageSize != 0) return Errno(EINVAL);
  uint64_t start = a.Ulong(0);
  // A range past the user address space is ENOMEM (access_ok() in
  // mm/mincore.c), before any work: the length is the guest's.
  if (a.Ulong(1) > (uint64_t{1} << 47) || start + a.Ulong(1) > (uint64_t{1} << 47)) {
    return Errno(ENOMEM);
  }
  uint64_t pages = PageRoundUp(a.Ulong(1)) / kPageSize;
  // The whole range must be mapped: one lookup per VMA, not per page.
  uint64_t addr = start;
  const uint64_t end = start + pages * kPageSize;
  while (addr < end) {
    if (!t.mm().WithVmaAt(UserAddr(addr), [&](const Vma& v) { addr = v.end; })) {
      return Errno(ENOMEM);
    }
  }
  // Residency as the host's page table has it (MM::Mincore), in bounded
  // chunks: the length is the guest's.
  std::vector<unsigned char> vec(std::min<uint64_t>(pages, 4096));
  for (uint64_t done = 0; done < pages; done += vec.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(vec.size(), pages - done));
    SV_TRY(t.mm().Mincore(start + done * kPageSize, n, vec.data()));
    SV_TRY(t.CopyOut(a.Addr(2) + done, vec.data(), n));
  }
  return 0;
}

}  // namespace seedvisor::sentry
