// MM: a guest address space as the sentry sees it.
//
// The platform's AddressSpace holds the pages; MM holds the map of VMAs (for
// address allocation, /proc/PID/maps and permission checks), brk, and the
// argv/envp ranges. Every change is made here first and then mirrored into
// the platform at the same address (MAP_FIXED), so the two never disagree.
//
//   SV_ASSIGN_OR_RETURN(UserAddr a, mm.Mmap({.length = n, .prot = PROT_READ, ...}));
//   SV_TRY(mm.CopyOut(a, data, n));
#ifndef SEEDVISOR_SENTRY_MM_MM_H_
#define SEEDVISOR_SENTRY_MM_MM_H_

#include <sys/mman.h>
#include <sys/resource.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "platform/platform.h"
#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"
#include "sentry/mm/aio.h"
#include "sentry/mm/vma_map.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

struct MmapRequest {
  UserAddr addr;  // hint, or exact with MAP_FIXED
  uint64_t length = 0;
  int prot = 0;
  int flags = 0;
  FileRef file;
  uint64_t offset = 0;
  std::string name;  // overrides the file's path in maps
  // RLIMIT_DATA, for a private writable mapping (may_expand_vm()).
  rlimit data_limit{RLIM_INFINITY, RLIM_INFINITY};
  // MAP_LOCKED: Vma::kLocked. A mapping locked by it or by
  // mlockall(MCL_FUTURE) must fit `memlock_limit` bytes locked in all
  // (RLIMIT_MEMLOCK; UINT64_MAX with CAP_IPC_LOCK), EAGAIN otherwise
  // (do_mmap(): mlock_future_ok()).
  uint8_t lock = 0;
  uint64_t memlock_limit = UINT64_MAX;
  bool anon_shared = false;  // Vma::anon_shared
};

class MM {
 public:
  static inline constexpr uint64_t kMinAddr = 0x10000;  // vm.mmap_min_addr

  explicit MM(std::shared_ptr<platform::AddressSpace> as);
  ~MM();

  // A number no other MM of this sentry has had or will have (unlike its
  // address, which a later MM may get): what outlives an MM may name it so
  // (sentry/sfork/dirty_pages.h). A sandbox fork's copy keeps it.
  uint64_t id() const { return id_; }

  platform::AddressSpace& address_space() { return *as_; }
  std::shared_ptr<platform::AddressSpace> shared_address_space() { return as_; }
  // Sandbox fork: the forked sentry's copy of this mm moves to its own copy
  // of the address space (same layout, same VMAs).
  void ReplaceAddressSpace(std::shared_ptr<platform::AddressSpace> as) { as_ = std::move(as); }
  // Sandbox fork: the copy of the address space still maps the seed's host
  // objects behind its MAP_SHARED mappings. The forked sentry marks the mm
  // (after the files made their data their own, FileDescription::
  // UnshareMappedInForkChild); every task calls RemapSharedAfterFork()
  // once its new context is attached and before it runs guest code: the
  // first maps each such VMA again, at the same address with the same
  // protection, from its file's host fd of this sandbox; the others wait
  // for it (mu_). Nothing else changes, so the guest never sees it.
  void MarkSharedForRemap();
  Status RemapSharedAfterFork();

  Result<UserAddr> Mmap(const MmapRequest& req);
  Status Munmap(UserAddr addr, uint64_t length);
  // `data_limit`: RLIMIT_DATA, which private writable mappings count
  // against (may_expand_vm(): ENOMEM past it).
  Status Mprotect(UserAddr addr, uint64_t length, int prot,
                  const rlimit& data_limit = {RLIM_INFINITY, RLIM_INFINITY});
  // A locked mapping that grows must fit `memlock_limit` (bytes; EAGAIN).
  Result<UserAddr> Mremap(UserAddr old_addr, uint64_t old_len, uint64_t new_len, int flags,
                          UserAddr new_addr,
                          const rlimit& data_limit = {RLIM_INFINITY, RLIM_INFINITY},
                          uint64_t memlock_limit = UINT64_MAX);
  Status Madvise(UserAddr addr, uint64_t length, int advice);
  Status Msync(UserAddr addr, uint64_t length, int flags);
  // mseal(2) (mm_seal.cc): seals every VMA of [addr, addr+length) (pages),
  // after checking that no page of it is unmapped (ENOMEM, nothing sealed).
  Status Mseal(UserAddr addr, uint64_t length, uint64_t flags);
  // brk(2): returns the new break, or the unchanged one when it cannot move
  // (below the heap's start, past RLIMIT_DATA `data_limit` with the data
  // segment or with every private writable mapping, into another mapping
  // or out of the address space): brk never fails.
  UserAddr Brk(UserAddr want, const rlimit& data_limit = {RLIM_INFINITY, RLIM_INFINITY});
  // `data_size`: the data segment's size (end_data - start_data), counted
  // with the heap against RLIMIT_DATA.
  void SetBrkBase(UserAddr base, uint64_t data_size = 0);

  // Copies that fail with EFAULT unless every byte moves. No copy reaches
  // at or above UserTop() (the platform's stub lives there, as the kernel
  // lives above TASK_SIZE), except reads of the vDSO.
  Status CopyIn(UserAddr addr, void* dst, size_t len);
  Status CopyOut(UserAddr addr, const void* src, size_t len);
  // Partial copies: as many bytes as are accessible from `addr` (EFAULT if none).
  Result<size_t> CopyInPartial(UserAddr addr, void* dst, size_t len);
  Result<size_t> CopyOutPartial(UserAddr addr, const void* src, size_t len);
  // False for an address the guest can never own: at or above UserTop()
  // (the stub's code, data and shared region), other than the vDSO.
  bool IsGuestAddress(UserAddr addr) const { return Reachable(addr, 1, false) != 0; }
  // True if every page of [addr, addr+len) is mapped with at least `prot`.
  bool Accessible(UserAddr addr, uint64_t len, int prot) const;
  // Another process's view of this memory, as /proc/PID/mem has it
  // (access_remote_vm() with FOLL_FORCE): page by page until the first page
  // that is not mapped; a private mapping is written even where it is
  // read-only, a shared one only where it is writable. Returns the bytes
  // copied, EIO if none (mem_rw()).
  Result<size_t> AccessForced(UserAddr addr, void* buf, size_t len, bool write);
  // A NUL-terminated string of at most `max` bytes (ENAMETOOLONG beyond).
  Result<std::string> CopyInString(UserAddr addr, size_t max);

  // A copy-on-write copy made through `ctx` (a context in this MM), as a
  // guest fork() sees it: without the DONTFORK ranges, with the WIPEONFORK
  // ones zero-filled once ApplyForkAdvice has run.
  Result<std::shared_ptr<MM>> Fork(platform::Context& ctx);
  // In a guest fork's child, on the host thread of its first task once its
  // context is attached (the only thread that can change the copy's
  // mappings), before any guest code runs: unmaps what the parent marked
  // DONTFORK and zero-fills what it marked WIPEONFORK. Once.
  Status ApplyForkAdvice();
  // Sandbox fork, in the forked sentry once this MM has its copy of the
  // seed's address space: the WIPEONFORK ranges are zero-filled there too
  // (by ApplyForkAdvice, before the guest runs). DONTFORK ranges stay: a
  // sandbox fork copies whole processes.
  void WipeOnSandboxFork();

  // membarrier(2)'s registrations of this address space, as
  // MEMBARRIER_CMD_GET_REGISTRATIONS reports them (the MEMBARRIER_CMD_REGISTER_*
  // bits). A guest fork's copy keeps them (dup_mm() copies membarrier_state);
  // exec's new MM has none (membarrier_exec_mmap()).
  std::atomic<uint32_t>& membarrier_registrations() { return membarrier_; }

  // Memory locking (mm_lock.cc). mlock(2), mlock2(2) and munlock(2):
  // `lock` (Vma::kLocked [| kLockOnFault], or 0) on the page-aligned
  // [start, end), VMA by VMA up to the first hole, which is ENOMEM
  // (apply_vma_lock_flags(): what came before it stays changed). A lock
  // that would leave more than `limit` bytes locked is ENOMEM, the pages
  // of the range locked already counted once (do_mlock()).
  Status SetLock(uint64_t start, uint64_t end, uint8_t lock, uint64_t limit = UINT64_MAX);
  // mlockall(2) / munlockall(2) (apply_mlockall_flags()): MCL_FUTURE
  // locks later mappings, MCL_CURRENT every VMA (ENOMEM if all of them
  // are more than `limit` bytes), MCL_ONFAULT without faulting pages in;
  // `flags` 0 unlocks everything.
  Status SetLockAll(int flags, uint64_t limit = UINT64_MAX);
  // Linux's mm->locked_vm in bytes: /proc/PID/status's VmLck.
  uint64_t LockedBytes() const;
  // What locking faults in (populate_vma_page_range()): the parts of
  // [start, end) in accessible VMAs locked without kLockOnFault, each
  // with whether to fault it for writing (private writable memory: write
  // faults break COW).
  struct PopulateRange {
    uint64_t start, end;
    bool write;
  };
  std::vector<PopulateRange> RangesToPopulate(uint64_t start, uint64_t end) const;
  // Faults in `r` on the host (MADV_POPULATE_READ/WRITE).
  Status Populate(const PopulateRange& r);

  // Residency (mm_pages.cc). mincore(2) for [start, start + pages pages),
  // every page mapped: a page is resident when the host's page table
  // maps it; a page of a file mapping that it does not is reported
  // resident (the host's page cache is not asked).
  Status Mincore(uint64_t start, uint64_t pages, unsigned char* vec) const;
  // /proc/PID/pagemap: the `n` 64-bit entries from virtual page `vpn`,
  // from the host's page table at the same addresses with what the guest
  // may see of it (present, swapped, file or shared, exclusive, soft
  // dirty) and never a frame or swap slot: 0 there, as Linux shows
  // readers without CAP_SYS_ADMIN. Entries past UserTop() are not read
  // (returns how many were).
  Result<size_t> PagemapEntries(uint64_t vpn, uint64_t* out, size_t n) const;

  // The native AIO contexts of this address space (sentry/mm/aio.h):
  // Fork() makes a copy without any, as Linux's mm_init() does.
  AioContexts& aio() { return aio_; }

  std::vector<Vma> Vmas() const;
  // Calls `f` with the VMA that holds `addr`, under the map's lock (so `f`
  // must not call into this MM); false, without calling it, if none does.
  // O(log n) and copies nothing: for lookups on hot paths (a shared futex's
  // key), where Vmas() would copy every VMA.
  bool WithVmaAt(UserAddr addr, absl::FunctionRef<void(const Vma&)> f) const;
  // The text of /proc/PID/maps, and its line for one VMA.
  std::string MapsText() const;
  static std::string MapsLine(const Vma& v);

  // Set by the loader, read by /proc/PID/{cmdline,environ,exe,auxv}.
  struct Layout {
    UserAddr arg_start, arg_end, env_start, env_end;
    UserAddr stack_top;
    // /proc/PID/stat's startcode..start_brk and startstack (argc's
    // address): set by the loader as load_elf_binary() sets the mm's.
    UserAddr start_code, end_code, start_data, end_data, start_brk, start_stack;
    std::string exe_path;
    FileRef exe;
    std::vector<uint64_t> auxv;  // key, value pairs
  };
  Layout layout() const;
  void set_layout(Layout l);

 private:
  Result<UserAddr> FindFree(uint64_t length, uint64_t hint) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // MAP_32BIT: the lowest gap in [1 GiB, 2 GiB) (x86-64's
  // arch_get_unmapped_area() range for it), ENOMEM if none.
  Result<UserAddr> FindFree32Bit(uint64_t length) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // madvise's fork advice, kept in the VMAs (see Vma::dontfork).
  Status AdviseFork(uint64_t start, uint64_t end, int advice);
  // How many of the `len` bytes at `addr` a copy may touch (0: EFAULT).
  size_t Reachable(UserAddr addr, size_t len, bool write) const;
  // may_expand_vm()'s RLIMIT_DATA part: whether `add` more bytes of a
  // mapping with `prot` and `flags` fit, next to the private writable
  // (non-stack) mappings there are (mm->data_vm); `replaced` bytes that
  // the new mapping takes the place of are not added. O(VMAs), and only
  // under a finite limit.
  bool DataFits(int prot, int flags, bool stack, uint64_t add, const rlimit& lim,
                uint64_t replaced = 0) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether every page of [start, end) is mapped, with at least `prot`.
  bool MappedLocked(uint64_t start, uint64_t end, int prot = 0) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a sealed VMA overlaps [start, end) (can_modify_mm()).
  bool SealedIn(uint64_t start, uint64_t end) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether madvise(`advice`) may not touch [start, end): a discarding
  // advice on a sealed VMA of private anonymous memory the guest cannot
  // write (can_modify_mm_madv(): dropping its pages would change them).
  bool SealedAgainstAdvice(uint64_t start, uint64_t end, int advice) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The mapped bytes in [start, end).
  uint64_t MappedBytesIn(uint64_t start, uint64_t end) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t id_;
  std::shared_ptr<platform::AddressSpace> as_;
  mutable absl::Mutex mu_;
  VmaMap vmas_ ABSL_GUARDED_BY(mu_);
  // Fork: the ranges ApplyForkAdvice unmaps and zero-fills.
  std::vector<std::pair<uint64_t, uint64_t>> fork_unmap_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, uint64_t>> fork_wipe_ ABSL_GUARDED_BY(mu_);
  uint64_t brk_base_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t brk_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t data_size_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t mmap_base_ ABSL_GUARDED_BY(mu_) = 0;
  Layout layout_ ABSL_GUARDED_BY(mu_);
  bool remap_shared_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint32_t> membarrier_{0};

  // mlockall(MCL_FUTURE): the lock new mappings get (mm->def_flags).
  uint8_t def_lock_ ABSL_GUARDED_BY(mu_) = 0;
  AioContexts aio_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_MM_MM_H_
