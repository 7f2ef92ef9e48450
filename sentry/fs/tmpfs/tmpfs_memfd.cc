// tmpfs (tmpfs.h): a regular file's data in its host memfd, and the
// copy-on-write by hand that keeps a sandbox fork's tmpfs files its own:
// the fork-generation word, the copy of a shared memfd before its first
// write (WritableMemfd), and AdoptTmpfsInForkChild.
#include "sentry/fs/tmpfs/tmpfs.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"

namespace seedvisor::sentry {
namespace {
// ---- Sandbox-fork generations (tmpfs.h: WritableMemfd) ----
//
// A tmpfs memfd is this sentry's alone if it was made or copied in the
// current generation. The generation word lives in a MAP_SHARED page that a
// sentry shares with a fork of it only while the fork adopts its state
// (AdoptTmpfsInForkChild): the fork bumps the word there — from then on the
// seed's memfds count as shared, so the seed copies before its next write
// too — and moves to a page of its own. Forks made earlier or later have
// their own pages: a fork never makes a sibling copy, and a sandbox whose
// own MAP_SHARED mappings exist is never marked by someone else's fork.
constexpr size_t kGenPage = 4096;
std::atomic<uint64_t> g_local_gen{1};  // if the shared page could not be made
std::atomic<std::atomic<uint64_t>*> g_gen{nullptr};

std::atomic<uint64_t>* NewGenPage(uint64_t value) {
  void* p = mmap(nullptr, kGenPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  static_assert(std::atomic<uint64_t>::is_always_lock_free);
  // SAFETY: a fresh, page-aligned, writable mapping of our own; a lock-free
  // atomic is address-free, so two processes may use it at once.
  return new (p) std::atomic<uint64_t>(value);
}

std::atomic<uint64_t>& Gen() {
  std::atomic<uint64_t>* g = g_gen.load(std::memory_order_acquire);
  if (g != nullptr) return *g;
  std::atomic<uint64_t>* fresh = NewGenPage(1);
  if (fresh == nullptr) fresh = &g_local_gen;  // AdoptTmpfsInForkChild refuses then
  if (g_gen.compare_exchange_strong(g, fresh)) return *fresh;
  if (fresh != &g_local_gen) munmap(fresh, kGenPage);
  return *g;
}

// Copies the data of `from` (size `size`) into `to`, data segments only: a
// sparse file stays sparse.
Status CopyData(int from, int to, off_t size) {
  off_t off = 0;
  while (off < size) {
    off_t data = lseek(from, off, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) return Errno(errno);
    off_t hole = lseek(from, data, SEEK_HOLE);
    if (hole < 0) return Errno(errno);
    off_t in = data, out = data;
    while (in < hole) {
      ssize_t n = copy_file_range(from, &in, to, &out, static_cast<size_t>(hole - in), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
        char buf[65536];
        ssize_t r = pread(from, buf, std::min<off_t>(sizeof(buf), hole - in), in);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return Errno(r < 0 ? errno : EIO);
        for (ssize_t done = 0; done < r;) {
          ssize_t w = pwrite(to, buf + done, static_cast<size_t>(r - done), out + done);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) return Errno(errno);
          done += w;
        }
        in += r;
        out += r;
        continue;
      }
      if (n < 0) return Errno(errno);
      if (n == 0) return Errno(EIO);  // shrank under us: cannot happen, nobody writes it
    }
    off = hole;
  }
  return {};
}

// ---- The host fd budget (tmpfs.h: TmpfsMemfdLimit) ----
std::atomic<int64_t> g_memfds{0};

// Counts one more memfd if the budget has room.
bool TakeMemfdSlot() {
  const int64_t limit = TmpfsMemfdLimit();
  int64_t n = g_memfds.load(std::memory_order_relaxed);
  do {
    if (n >= limit) return false;
  } while (!g_memfds.compare_exchange_weak(n, n + 1, std::memory_order_relaxed));
  return true;
}

void ReleaseMemfdSlot() { g_memfds.fetch_sub(1, std::memory_order_relaxed); }

}  // namespace

int64_t TmpfsMemfdLimit() {
  struct rlimit r;
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  // Far beyond any fd count the host allows (RLIM_INFINITY is ~0).
  const int64_t cur = std::min<uint64_t>(r.rlim_cur, uint64_t{1} << 40);
  const int64_t reserve = std::min(std::max<int64_t>(cur / 4, kTmpfsMemfdReserve), cur / 2);
  return cur - reserve;
}

int64_t TmpfsMemfds() { return g_memfds.load(std::memory_order_relaxed); }

absl::Status AdoptTmpfsInForkChild() {
  std::atomic<uint64_t>* seed = g_gen.load();
  if (seed == nullptr) return absl::OkStatus();  // no tmpfs file ever existed
  if (seed == &g_local_gen) {
    return absl::FailedPreconditionError(
        "tmpfs files cannot be forked: the sentry could not map its fork-generation page at start");
  }
  uint64_t v = seed->fetch_add(1) + 1;  // the seed's memfds: shared from now on
  std::atomic<uint64_t>* mine = NewGenPage(v);  // ours too: every gen is < v
  if (mine == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("tmpfs fork-generation page: ", strerror(errno)));
  }
  g_gen.store(mine);
  munmap(seed, kGenPage);  // the seed's page: none of our business any more
  return absl::OkStatus();
}

void TmpfsInode::NewMemfd() {
  if (!TakeMemfdSlot()) return;  // memfd_ stays -1: the caller's ENOSPC
  memfd_ = memfd_create("seedvisor-tmpfs", MFD_CLOEXEC);
  if (memfd_ < 0) ReleaseMemfdSlot();
  memfd_gen_ = Gen().load();
}

void TmpfsInode::CloseMemfd() {
  if (memfd_ < 0) return;
  close(memfd_);
  memfd_ = -1;
  ReleaseMemfdSlot();
}

Status TmpfsInode::EnsureMemfdLocked() {
  if (memfd_ >= 0) return {};
  if (!S_ISREG(st_.st_mode)) return Errno(EINVAL);
  NewMemfd();
  if (memfd_ < 0) return Errno(ENOSPC);
  return {};
}

Result<int64_t> TmpfsInode::DataSize() const {
  const int fd = memfd_.load();
  if (fd < 0) return int64_t{0};
  struct stat st;
  if (fstat(fd, &st) != 0) return Errno(errno);
  return static_cast<int64_t>(st.st_size);
}

Result<int> TmpfsInode::MappableMemfd() {
  std::lock_guard l(mu_);
  SV_TRY(EnsureMemfdLocked());
  return memfd_.load();
}

Status TmpfsInode::MakeMemfd(bool allow_sealing) {
  std::lock_guard l(mu_);
  if (!S_ISREG(st_.st_mode)) return Errno(EINVAL);
  if (allow_sealing) {
    int fd = memfd_create("seedvisor-tmpfs", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return Errno(errno);
    if (memfd_ >= 0) {
      close(memfd_);  // its budget slot goes to the new one
    } else if (!TakeMemfdSlot()) {
      close(fd);
      return Errno(ENFILE);
    }
    memfd_ = fd;
    memfd_gen_ = Gen().load();
    sealing_ = true;
  } else if (!EnsureMemfdLocked().ok()) {
    // A memfd holds its host memfd from the start (memfd_create's ENFILE
    // at the budget, not a failing first write).
    return Errno(ENFILE);
  }
  is_memfd_ = true;
  return {};
}

Result<int> TmpfsInode::WritableMemfd() {
  std::lock_guard l(mu_);
  SV_TRY(EnsureMemfdLocked());
  SV_TRY(UnshareLocked());
  return memfd_.load();
}

void TmpfsInode::KeepMemfdAfterFork() {
  std::lock_guard l(mu_);
  memfd_gen_ = Gen().load();
}

Status TmpfsInode::UnshareLocked() {
  const uint64_t now = Gen().load();
  if (memfd_ < 0 || memfd_gen_ == now) return {};
  struct stat hs;
  if (fstat(memfd_, &hs) != 0) return Errno(errno);
  int seals = 0;
  if (sealing_) {
    seals = fcntl(memfd_, F_GET_SEALS);
    if (seals < 0) return Errno(errno);
  }
  int fd = memfd_create("seedvisor-tmpfs", MFD_CLOEXEC | (sealing_ ? MFD_ALLOW_SEALING : 0));
  if (fd < 0) return Errno(errno);
  Status s;
  if (ftruncate(fd, hs.st_size) != 0) s = Errno(errno);
  if (s.ok()) s = CopyData(memfd_, fd, hs.st_size);
  if (s.ok() && seals != 0 && fcntl(fd, F_ADD_SEALS, seals) != 0) s = Errno(errno);
  // The copy takes the fd number of the shared memfd: readers that loaded
  // memfd_ a moment ago read the same bytes from either.
  if (s.ok() && dup3(fd, memfd_, O_CLOEXEC) < 0) s = Errno(errno);
  close(fd);
  if (!s.ok()) return s;
  memfd_gen_ = now;
  return {};
}

}  // namespace seedvisor::sentry
