// MM::AccessForced: /proc/PID/mem's reads and writes (mem_rw() and
// access_remote_vm() with FOLL_FORCE).
#include <algorithm>

#include "sentry/mm/mm.h"

namespace seedvisor::sentry {

Result<size_t> MM::AccessForced(UserAddr addr, void* buf, size_t len, bool write) {
  char* p = static_cast<char*>(buf);
  size_t done = 0;
  while (done < len) {
    const uint64_t a = addr.value() + done;
    if (a < addr.value()) break;  // wrapped past the top
    // One page at most: the next one may be another mapping, or none.
    size_t chunk = std::min<size_t>(len - done, kPageSize - a % kPageSize);
    int prot = 0;
    bool shared = false;
    bool prot_unknown = false;  // the vDSO: no VMA
    {
      absl::MutexLock l(&mu_);
      auto it = vmas_.upper_bound(a);
      const bool found = it != vmas_.begin() && (--it)->second.end > a;
      if (found) {
        prot = it->second.prot;
        shared = (it->second.flags & MAP_SHARED) != 0;
      } else if (write || a < as_->UserTop().value()) {
        break;
      }
      // Else the vDSO, which has no VMA here: readable (Reachable says
      // where), never writable.
      prot_unknown = !found;
    }
    if (Reachable(UserAddr(a), chunk, false) != chunk) break;
    if (!write) {
      // check_vma_flags(): a forced read needs only VM_MAYREAD, which every
      // mapping has, so PROT_NONE pages read too (through the host's own
      // FOLL_FORCE: process_vm_readv refuses them).
      Result<size_t> n = (prot & PROT_READ) || prot_unknown
                             ? as_->Read(UserAddr(a), p + done, chunk)
                             : as_->ReadForce(UserAddr(a), p + done, chunk);
      if (!n.ok() || *n == 0) break;
      done += *n;
      if (*n != chunk) break;
      continue;
    }
    if (prot & PROT_WRITE) {
      Result<size_t> n = as_->Write(UserAddr(a), p + done, chunk);
      if (!n.ok() || *n == 0) break;
      done += *n;
      if (*n != chunk) break;
      continue;
    }
    // check_vma_flags(): a forced write to a read-only mapping only if it
    // is copy-on-write (private).
    if (shared) break;
    if (!as_->WriteForce(UserAddr(a), p + done, chunk).ok()) break;
    done += chunk;
  }
  if (done == 0 && len != 0) return Errno(EIO);
  return done;
}

}  // namespace seedvisor::sentry
