// MM (mm.h): an address space's mappings: mmap, munmap, mprotect,
// mremap and brk. madvise and msync are in mm_advise.cc, copies to and
// from guest memory in mm_copy.cc, forks in mm_fork.cc, the VMA view
// and /proc maps in mm_maps.cc, /proc/PID/mem in mm_remote.cc.
#include "sentry/mm/mm.h"

#include <algorithm>
#include <atomic>

namespace seedvisor::sentry {
namespace {

// Where top-down mmap allocation starts: below the stack area, as Linux's
// mmap_base leaves room for a 8 MiB stack plus a gap.
constexpr uint64_t kStackGap = 128ull << 20;

std::atomic<uint64_t> next_mm_id{1};  // MM::id()

}  // namespace

MM::MM(std::shared_ptr<platform::AddressSpace> as)
    : id_(next_mm_id.fetch_add(1, std::memory_order_relaxed)),
      as_(std::move(as)),
      vmas_(kMinAddr, as_->UserTop().value()) {
  absl::MutexLock l(&mu_);
  mmap_base_ = as_->UserTop().value() - kStackGap;
}

MM::~MM() = default;

Result<UserAddr> MM::FindFree32Bit(uint64_t length) const {
  constexpr uint64_t kBegin = 0x40000000, kEnd = 0x80000000;
  uint64_t start = kBegin;
  auto it = vmas_.upper_bound(kBegin);  // the first VMA that starts above kBegin
  if (it != vmas_.begin()) start = std::max(start, std::prev(it)->second.end);
  for (;;) {
    uint64_t gap_end = it == vmas_.end() ? kEnd : std::min(it->first, kEnd);
    if (start < gap_end && gap_end - start >= length) return UserAddr(start);
    if (it == vmas_.end() || it->first >= kEnd) return Errno(ENOMEM);
    start = std::max(start, it->second.end);
    ++it;
  }
}

Result<UserAddr> MM::FindFree(uint64_t length, uint64_t hint) const {
  const uint64_t top = as_->UserTop().value();
  if (hint != 0) {
    hint = PageRoundDown(hint);
    if (hint >= kMinAddr && hint + length <= top && hint + length > hint &&
        vmas_.RangeFree(hint, hint + length)) {
      return UserAddr(hint);
    }
  }
  // Top-down from mmap_base_, as Linux's default layout does.
  std::optional<uint64_t> a = vmas_.HighestFree(length, mmap_base_);
  if (!a) return Errno(ENOMEM);
  return UserAddr(*a);
}

namespace {

// is_data_mapping(): private, writable and not a stack (VM_STACK is the
// main stack's VM_GROWSDOWN).
bool IsData(int prot, int flags, bool stack) {
  return (prot & PROT_WRITE) && !(flags & MAP_SHARED) && !(flags & MAP_GROWSDOWN) && !stack;
}

bool IsStack(const Vma& v) { return v.name == "[stack]"; }

}  // namespace

bool MM::DataFits(int prot, int flags, bool stack, uint64_t add, const rlimit& lim,
                  uint64_t replaced) const {
  if (lim.rlim_cur == RLIM_INFINITY || !IsData(prot, flags, stack)) return true;
  uint64_t data = 0;
  for (const auto& [start, v] : vmas_) {
    if (IsData(v.prot, v.flags, IsStack(v))) data += v.end - v.start;
  }
  add -= std::min(add, replaced);
  const uint64_t pages = data / kPageSize + add / kPageSize;
  if (pages <= lim.rlim_cur / kPageSize) return true;
  // "Workaround for Valgrind": a limit of 0 falls back to the hard limit.
  return lim.rlim_cur == 0 && (lim.rlim_max == RLIM_INFINITY || pages <= lim.rlim_max / kPageSize);
}

uint64_t MM::MappedBytesIn(uint64_t start, uint64_t end) const {
  uint64_t n = 0;
  auto it = vmas_.upper_bound(start);
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && it->first < end; ++it) {
    const Vma& v = it->second;
    if (v.end <= start) continue;
    n += std::min(v.end, end) - std::max(v.start, start);
  }
  return n;
}

Result<UserAddr> MM::Mmap(const MmapRequest& req) {
  if (req.length == 0) return Errno(EINVAL);
  uint64_t length = PageRoundUp(req.length);
  if (length < req.length) return Errno(ENOMEM);
  if (req.offset % kPageSize != 0) return Errno(EINVAL);
  int host_fd = -1;
  if (req.file) {
    // A shared mapping sees and makes changes: the host object must be ours.
    Result<int> fd = (req.flags & MAP_SHARED) ? req.file->MappableFdForWrite()
                                              : req.file->MappableFd();
    // A tmpfs file that takes its memfd now, past the host fd budget
    // (tmpfs.h): out of memory, as mmap(2) says it.
    if (!fd.ok()) return fd.error() == Errno(ENOSPC) ? Errno(ENOMEM) : fd.error();
    host_fd = *fd;
  }
  absl::MutexLock l(&mu_);
  const uint64_t top = as_->UserTop().value();
  uint64_t addr;
  if (req.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    addr = req.addr.value();
    if (addr % kPageSize != 0) return Errno(EINVAL);
    if (addr < kMinAddr || addr + length > top || addr + length < addr) return Errno(ENOMEM);
    if ((req.flags & MAP_FIXED_NOREPLACE) && !vmas_.RangeFree(addr, addr + length)) {
      return Errno(EEXIST);
    }
    if (SealedIn(addr, addr + length)) return Errno(EPERM);  // mmap_region()
  } else if ((req.flags & MAP_32BIT) &&
             (req.addr.value() == 0 ||
              !vmas_.RangeFree(req.addr.value(), req.addr.value() + length))) {
    SV_ASSIGN_OR_RETURN(UserAddr a, FindFree32Bit(length));
    addr = a.value();
  } else {
    SV_ASSIGN_OR_RETURN(UserAddr a, FindFree(length, req.addr.value()));
    addr = a.value();
  }
  int pflags = req.flags & (MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                            MAP_POPULATE | MAP_GROWSDOWN | MAP_STACK);
  // mmap_region(): the pages the mapping replaces (MAP_FIXED), of any
  // kind, are taken off what it adds (may_expand_vm(pglen - nr_pages)).
  if (req.data_limit.rlim_cur != RLIM_INFINITY) {
    const uint64_t replaced = MappedBytesIn(addr, addr + length);
    if (!DataFits(req.prot, pflags, req.name == "[stack]", length, req.data_limit, replaced)) {
      return Errno(ENOMEM);
    }
  }
  // do_mmap(): a locked mapping (MAP_LOCKED, mlockall(MCL_FUTURE)) must
  // fit RLIMIT_MEMLOCK with what is locked already (mlock_future_ok()),
  // and is faulted in unless locked on fault (mm_populate()).
  const uint8_t lock = req.lock | def_lock_;
  int host_flags = pflags;
  if (lock & Vma::kLocked) {
    if (req.memlock_limit != UINT64_MAX &&
        (vmas_.locked_bytes() + length) / kPageSize > req.memlock_limit / kPageSize) {
      return Errno(EAGAIN);
    }
    if (!(lock & Vma::kLockOnFault)) host_flags |= MAP_POPULATE;
  }
  if (req.file && req.file->DataImmutableInSandbox()) {
    SV_TRY(
        as_->MapImmutableFile(UserAddr(addr), length, req.prot, host_flags, host_fd, req.offset));
  } else {
    SV_TRY(as_->Map(UserAddr(addr), length, req.prot, host_flags, host_fd, req.offset));
  }
  vmas_.RemoveRange(addr, addr + length);
  Vma v;
  v.start = addr;
  v.end = addr + length;
  v.prot = req.prot;
  v.flags = pflags;
  v.file = req.file;
  v.offset = req.offset;
  v.name = req.name.empty() && req.file ? req.file->DisplayPath() : req.name;
  v.lock = lock;
  v.anon_shared = req.anon_shared;
  vmas_.Insert(std::move(v));
  return UserAddr(addr);
}

Status MM::Munmap(UserAddr addr, uint64_t length) {
  if (addr.value() % kPageSize != 0 || length == 0) return Errno(EINVAL);
  uint64_t end = addr.value() + PageRoundUp(length);
  if (end < addr.value() || end > as_->UserTop().value()) return Errno(EINVAL);
  absl::MutexLock l(&mu_);
  if (SealedIn(addr.value(), end)) return Errno(EPERM);  // do_vmi_munmap()
  SV_TRY(as_->Unmap(addr, end - addr.value()));
  vmas_.RemoveRange(addr.value(), end);
  return {};
}

Status MM::Mprotect(UserAddr addr, uint64_t length, int prot, const rlimit& data_limit) {
  if (addr.value() % kPageSize != 0) return Errno(EINVAL);
  uint64_t start = addr.value();
  uint64_t end = start + PageRoundUp(length);
  if (end < start) return Errno(ENOMEM);
  if (start == end) return {};
  absl::MutexLock l(&mu_);
  // do_mprotect_pkey() (Linux 6.10): a seal anywhere in the range first.
  if (SealedIn(start, end)) return Errno(EPERM);
  // Every page must be mapped (ENOMEM otherwise, as mprotect(2) says).
  if (!MappedLocked(start, end)) return Errno(ENOMEM);
  // A shared writable mapping needs a writable file (EACCES).
  auto it = vmas_.upper_bound(start);
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && it->first < end; ++it) {
    const Vma& v = it->second;
    if ((prot & PROT_WRITE) && (v.flags & MAP_SHARED) && v.file && !v.file->writable()) {
      return Errno(EACCES);
    }
  }
  // mprotect_fixup(): private memory that turns writable becomes data,
  // which must fit RLIMIT_DATA (ENOMEM).
  if (data_limit.rlim_cur != RLIM_INFINITY && (prot & PROT_WRITE)) {
    uint64_t turning = 0;
    it = vmas_.upper_bound(start);
    if (it != vmas_.begin()) --it;
    for (; it != vmas_.end() && it->first < end; ++it) {
      const Vma& v = it->second;
      if (v.end <= start || IsData(v.prot, v.flags, IsStack(v))) continue;
      if (IsData(prot, v.flags, IsStack(v))) {
        turning += std::min(v.end, end) - std::max(v.start, start);
      }
    }
    if (turning > 0 && !DataFits(prot, MAP_PRIVATE, false, turning, data_limit)) {
      return Errno(ENOMEM);
    }
  }
  SV_TRY(as_->Protect(addr, end - start, prot));
  vmas_.SetProt(start, end, prot);
  return {};
}

Result<UserAddr> MM::Mremap(UserAddr old_addr, uint64_t old_len, uint64_t new_len, int flags,
                            UserAddr new_addr, const rlimit& data_limit,
                            uint64_t memlock_limit) {
  if (old_addr.value() % kPageSize != 0) return Errno(EINVAL);
  if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP)) return Errno(EINVAL);
  if ((flags & MREMAP_FIXED) && !(flags & MREMAP_MAYMOVE)) return Errno(EINVAL);
  old_len = PageRoundUp(old_len);
  new_len = PageRoundUp(new_len);
  if (new_len == 0) return Errno(EINVAL);
  absl::MutexLock l(&mu_);
  uint64_t start = old_addr.value();
  // mremap(): a sealed source is neither moved nor resized.
  if (SealedIn(start, start + old_len)) return Errno(EPERM);
  auto it = vmas_.upper_bound(start);
  if (it == vmas_.begin()) return Errno(EFAULT);
  --it;
  Vma v = it->second;
  if (v.end < start + old_len || v.start > start) return Errno(EFAULT);
  if (old_len == 0) return Errno(EINVAL);  // duplicating shared mappings: not supported
  if (new_len <= old_len && !(flags & MREMAP_FIXED)) {
    if (new_len < old_len) {
      SV_TRY(as_->Unmap(UserAddr(start + new_len), old_len - new_len));
      vmas_.RemoveRange(start + new_len, start + old_len);
    }
    return old_addr;
  }
  // vma_to_resize(): growth counts against RLIMIT_DATA.
  if (new_len > old_len && !DataFits(v.prot, v.flags, IsStack(v), new_len - old_len, data_limit)) {
    return Errno(ENOMEM);
  }
  // vma_to_resize(): so does a locked mapping's against RLIMIT_MEMLOCK.
  if ((v.lock & Vma::kLocked) && memlock_limit != UINT64_MAX &&
      (vmas_.locked_bytes() + new_len - old_len) / kPageSize > memlock_limit / kPageSize) {
    return Errno(EAGAIN);
  }
  const uint64_t top = as_->UserTop().value();
  // Grow in place when the pages after the mapping are free.
  if (!(flags & MREMAP_FIXED) && start + old_len == v.end && start + new_len <= top &&
      vmas_.RangeFree(start + old_len, start + new_len)) {
    SV_TRY(as_->Remap(old_addr, old_len, old_addr, new_len));
    vmas_.SplitAt(start);
    vmas_.SetEnd(vmas_.find(start), start + new_len);
    return old_addr;
  }
  if (!(flags & MREMAP_MAYMOVE)) return Errno(ENOMEM);
  uint64_t dest;
  if (flags & MREMAP_FIXED) {
    dest = new_addr.value();
    if (dest % kPageSize != 0) return Errno(EINVAL);
    if (dest < kMinAddr || dest + new_len > top) return Errno(EINVAL);
    if (dest < start + old_len && start < dest + new_len) return Errno(EINVAL);
    if (SealedIn(dest, dest + new_len)) return Errno(EPERM);  // mremap_to() unmaps it
  } else {
    SV_ASSIGN_OR_RETURN(UserAddr a, FindFree(new_len, 0));
    dest = a.value();
  }
  SV_TRY(as_->Remap(old_addr, old_len, UserAddr(dest), new_len));
  vmas_.RemoveRange(dest, dest + new_len);
  vmas_.RemoveRange(start, start + old_len);
  Vma moved = v;
  moved.offset = v.file ? v.offset + (start - v.start) : 0;
  moved.start = dest;
  moved.end = dest + new_len;
  vmas_.Insert(std::move(moved));
  return UserAddr(dest);
}

void MM::SetBrkBase(UserAddr base, uint64_t data_size) {
  absl::MutexLock l(&mu_);
  brk_base_ = brk_ = PageRoundUp(base.value());
  data_size_ = data_size;
}

UserAddr MM::Brk(UserAddr want, const rlimit& data_limit) {
  absl::MutexLock l(&mu_);
  uint64_t w = want.value();
  // As Linux's brk (mm/mmap.c): below the heap's start, then
  // check_data_rlimit() (before the shrink case, so a process over its limit
  // cannot shrink either), then the address space's end. Checked before
  // rounding up, which would wrap a break near 2^64 (brk(-1)) to 0.
  if (w < brk_base_) return UserAddr(brk_);
  if (data_limit.rlim_cur != RLIM_INFINITY &&
      (w - brk_base_) + data_size_ > data_limit.rlim_cur) {
    return UserAddr(brk_);
  }
  if (w > as_->UserTop().value()) return UserAddr(brk_);
  uint64_t old_end = PageRoundUp(brk_);
  uint64_t new_end = PageRoundUp(w);
  if (new_end > old_end) {
    if (new_end > mmap_base_ || !vmas_.RangeFree(old_end, new_end)) return UserAddr(brk_);
    // do_brk_flags(): the heap is data, next to every other private
    // writable mapping (may_expand_vm()).
    if (!DataFits(PROT_READ | PROT_WRITE, MAP_PRIVATE, false, new_end - old_end, data_limit)) {
      return UserAddr(brk_);
    }
    if (!as_->Map(UserAddr(old_end), new_end - old_end, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
             .ok()) {
      return UserAddr(brk_);
    }
    // Extend the heap VMA, or start one.
    auto it = vmas_.upper_bound(old_end - 1);
    // do_brk_flags(): the new part has mlockall(MCL_FUTURE)'s lock, and is
    // faulted in if that locks it (brk(): mm_populate()).
    if (def_lock_ == Vma::kLocked) {
      (void)as_->Advise(UserAddr(old_end), new_end - old_end, MADV_POPULATE_WRITE);
    }
    if (old_end > brk_base_ && it != vmas_.begin() && std::prev(it)->second.name == "[heap]" &&
        std::prev(it)->second.end == old_end && std::prev(it)->second.lock == def_lock_) {
      vmas_.SetEnd(std::prev(it), new_end);
    } else {
      Vma v;
      v.start = old_end;
      v.end = new_end;
      v.prot = PROT_READ | PROT_WRITE;
      v.flags = MAP_PRIVATE | MAP_ANONYMOUS;
      v.name = "[heap]";
      v.lock = def_lock_;
      vmas_.Insert(std::move(v));
    }
  } else if (new_end < old_end) {
    if (SealedIn(new_end, old_end)) return UserAddr(brk_);  // brk(): a sealed heap stays
    if (!as_->Unmap(UserAddr(new_end), old_end - new_end).ok()) return UserAddr(brk_);
    vmas_.RemoveRange(new_end, old_end);
  }
  brk_ = w;
  return UserAddr(brk_);
}

MM::Layout MM::layout() const {
  absl::MutexLock l(&mu_);
  return layout_;
}

void MM::set_layout(Layout l) {
  absl::MutexLock lock(&mu_);
  layout_ = std::move(l);
}

}  // namespace seedvisor::sentry
