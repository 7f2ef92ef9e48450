// MM (mm.h): copying to and from guest memory through the address space
// (CopyIn/CopyOut and their partial and string forms), and what of it is
// accessible or reachable.
#include "sentry/mm/mm.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace seedvisor::sentry {

bool MM::Accessible(UserAddr addr, uint64_t len, int prot) const {
  const uint64_t start = addr.value(), end = addr.value() + len;
  if (end < start) return false;
  absl::MutexLock l(&mu_);
  return MappedLocked(start, end, prot);
}

bool MM::MappedLocked(uint64_t start, uint64_t end, int prot) const {
  uint64_t cur = start;
  auto it = vmas_.upper_bound(cur);
  if (it != vmas_.begin()) --it;
  for (; it != vmas_.end() && cur < end; ++it) {
    if (it->second.end <= cur) continue;
    if (it->first > cur || (it->second.prot & prot) != prot) return false;
    cur = it->second.end;
  }
  return cur >= end;
}

size_t MM::Reachable(UserAddr addr, size_t len, bool write) const {
  const uint64_t a = addr.value(), top = as_->UserTop().value();
  if (a < top) return static_cast<size_t>(std::min<uint64_t>(len, top - a));
  // Above UserTop() only the vDSO is the guest's (its code, two pages, as
  // MapsText() shows it), and the guest cannot write it.
  const uint64_t vdso = as_->VdsoBase().value();
  if (write || vdso == 0 || a < vdso || a >= vdso + 2 * kPageSize) return 0;
  return static_cast<size_t>(std::min<uint64_t>(len, vdso + 2 * kPageSize - a));
}

Status MM::CopyIn(UserAddr addr, void* dst, size_t len) {
  if (len == 0) return {};
  if (Reachable(addr, len, false) != len) return Errno(EFAULT);
  SV_ASSIGN_OR_RETURN(size_t n, as_->Read(addr, dst, len));
  if (n != len) return Errno(EFAULT);
  return {};
}

Status MM::CopyOut(UserAddr addr, const void* src, size_t len) {
  if (len == 0) return {};
  if (Reachable(addr, len, true) != len) return Errno(EFAULT);
  SV_ASSIGN_OR_RETURN(size_t n, as_->Write(addr, src, len));
  if (n != len) return Errno(EFAULT);
  return {};
}

Result<size_t> MM::CopyInPartial(UserAddr addr, void* dst, size_t len) {
  if (len == 0) return as_->Read(addr, dst, len);
  size_t n = Reachable(addr, len, false);
  if (n == 0) return Errno(EFAULT);
  return as_->Read(addr, dst, n);
}

Result<size_t> MM::CopyOutPartial(UserAddr addr, const void* src, size_t len) {
  if (len == 0) return as_->Write(addr, src, len);
  size_t n = Reachable(addr, len, true);
  if (n == 0) return Errno(EFAULT);
  return as_->Write(addr, src, n);
}

Result<std::string> MM::CopyInString(UserAddr addr, size_t max) {
  std::string out;
  char buf[256];
  uint64_t a = addr.value();
  while (out.size() <= max) {
    // Never read across a page boundary in one go: the next page may be unmapped.
    size_t chunk = std::min<size_t>(sizeof(buf), kPageSize - (a % kPageSize));
    chunk = Reachable(UserAddr(a), chunk, false);
    if (chunk == 0) return Errno(EFAULT);
    SV_ASSIGN_OR_RETURN(size_t n, as_->Read(UserAddr(a), buf, chunk));
    const char* nul = static_cast<const char*>(std::memchr(buf, '\0', n));
    if (nul != nullptr) {
      out.append(buf, static_cast<size_t>(nul - buf));
      if (out.size() > max) break;
      return out;
    }
    out.append(buf, n);
    a += n;
  }
  return Errno(ENAMETOOLONG);
}

}  // namespace seedvisor::sentry
