// MM (mm.h): the VMAs as others see them: a copy of the list, the VMA at
// an address, and /proc/PID/maps' text.
#include "sentry/mm/mm.h"

#include <sys/mman.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"

namespace seedvisor::sentry {

std::vector<Vma> MM::Vmas() const {
  absl::MutexLock l(&mu_);
  std::vector<Vma> out;
  out.reserve(vmas_.size());
  for (const auto& [start, v] : vmas_) out.push_back(v);
  return out;
}

bool MM::WithVmaAt(UserAddr addr, absl::FunctionRef<void(const Vma&)> f) const {
  absl::MutexLock l(&mu_);
  auto it = vmas_.upper_bound(addr.value());
  if (it == vmas_.begin()) return false;
  --it;
  if (addr.value() >= it->second.end) return false;
  f(it->second);
  return true;
}

std::string MM::MapsLine(const Vma& v) {
  std::string line = absl::StrFormat(
      "%08x-%08x %c%c%c%c %08x 00:00 0", v.start, v.end, (v.prot & PROT_READ) ? 'r' : '-',
      (v.prot & PROT_WRITE) ? 'w' : '-', (v.prot & PROT_EXEC) ? 'x' : '-',
      (v.flags & MAP_SHARED) ? 's' : 'p', v.file ? v.offset : 0);
  if (!v.name.empty()) {
    line.resize(std::max<size_t>(line.size() + 1, 73), ' ');
    line += v.name;
  }
  return line + "\n";
}

std::string MM::MapsText() const {
  std::string out;
  for (const Vma& v : Vmas()) out += MapsLine(v);
  uint64_t vdso = as_->VdsoBase().value();
  if (vdso != 0) {
    out += absl::StrFormat("%08x-%08x r-xp 00000000 00:00 0%*s[vdso]\n", vdso, vdso + 2 * kPageSize,
                           46, "");
  }
  return out;
}

}  // namespace seedvisor::sentry
