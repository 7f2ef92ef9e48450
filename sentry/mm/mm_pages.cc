// MM (mm.h): which guest pages are in memory, for mincore(2) and
// /proc/PID/pagemap. Guest memory is mapped 1:1 in the host process of the
// address space (every platform), so the host's page table at the guest's
// addresses answers: the sentry reads the host's /proc/PID/pagemap of that
// process and passes on only what the guest may know.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "sentry/base/log.h"
#include "sentry/mm/mm.h"

namespace seedvisor::sentry {
namespace {

// Documentation/admin-guide/mm/pagemap.rst: the bits of an entry.
constexpr uint64_t kPresent = 1ULL << 63;
constexpr uint64_t kSwapped = 1ULL << 62;
constexpr uint64_t kFileOrSharedAnon = 1ULL << 61;
constexpr uint64_t kExclusive = 1ULL << 56;
constexpr uint64_t kSoftDirty = 1ULL << 55;
// What a guest sees: never bits 0-54 (the host's frame number, or swap
// type and offset), nor uffd-wp or guard-region bits of a host feature
// the guest has no way to use.
constexpr uint64_t kGuestBits = kPresent | kSwapped | kFileOrSharedAnon | kExclusive | kSoftDirty;

// The host's entries for `n` pages from `vpn` of process `pid`; fewer
// (the rest left as they were) if the host gave fewer.
Result<size_t> ReadHostPagemap(int pid, uint64_t vpn, uint64_t* out, size_t n) {
  const std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // The sentry reads its stubs' /proc files (smaps, status) alike; a
    // host that refuses this one is worth a --debug line.
    const int err = errno;
    Log::Debug("pagemap of host process %d: %s", pid, std::strerror(err));
    return Errno(err);
  }
  size_t done = 0;
  while (done < n) {
    // SAFETY: `out` holds n entries; pread writes at most the bytes asked.
    const ssize_t got = pread(fd, reinterpret_cast<char*>(out + done), (n - done) * 8,
                              static_cast<off_t>((vpn + done) * 8));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<size_t>(got) / 8;
  }
  close(fd);
  return done;
}

}  // namespace

Result<size_t> MM::PagemapEntries(uint64_t vpn, uint64_t* out, size_t n) const {
  const uint64_t top_vpn = as_->UserTop().value() / kPageSize;
  if (vpn >= top_vpn) return size_t{0};
  n = static_cast<size_t>(std::min<uint64_t>(n, top_vpn - vpn));
  std::fill(out, out + n, 0);
  // A host that does not let the sentry read it (it always should) shows
  // no page present rather than failing the guest's read.
  Result<size_t> got = ReadHostPagemap(as_->host_pid(), vpn, out, n);
  const size_t valid = got.ok() ? *got : 0;
  for (size_t i = 0; i < valid; ++i) out[i] &= kGuestBits;
  std::fill(out + valid, out + n, 0);
  return n;
}

Status MM::Mincore(uint64_t start, uint64_t pages, unsigned char* vec) const {
  const uint64_t end = start + pages * kPageSize;
  std::fill(vec, vec + pages, 0);
  {
    // A file's page that this process has not mapped may still be in the
    // host's page cache (mincore_unmapped_range()); not knowing, say it is,
    // as a read would find it there.
    absl::MutexLock l(&mu_);
    auto it = vmas_.upper_bound(start);
    if (it != vmas_.begin()) --it;
    for (; it != vmas_.end() && it->first < end; ++it) {
      const Vma& v = it->second;
      if (v.end <= start || v.file == nullptr || v.anon_shared) continue;
      const uint64_t lo = std::max(v.start, start), hi = std::min(v.end, end);
      std::fill(vec + (lo - start) / kPageSize, vec + (hi - start) / kPageSize, 1);
    }
  }
  std::vector<uint64_t> entries(pages, 0);
  Result<size_t> got = ReadHostPagemap(as_->host_pid(), start / kPageSize, entries.data(), pages);
  if (!got.ok()) {
    // Not knowing, every page is resident (what the sandbox said before
    // it asked the host).
    std::fill(vec, vec + pages, 1);
    return {};
  }
  for (size_t i = 0; i < *got; ++i) {
    if (entries[i] & kPresent) vec[i] = 1;
  }
  return {};
}

}  // namespace seedvisor::sentry
