// Pipe buffers counted per user (fs/pipe.c: account_pipe_buffers(),
// too_many_pipe_buffers_soft()/_hard(), alloc_pipe_info(), pipe_set_size())
// and the two /proc/sys/fs limits, pipe-user-pages-soft (16384 pages) and
// pipe-user-pages-hard (0: none). A user without CAP_SYS_RESOURCE and
// CAP_SYS_ADMIN past the soft limit gets new pipes of two pages and cannot
// grow one with F_SETPIPE_SZ (EPERM); past the hard limit, no new pipe
// (ENFILE). The count is per real user id across the sandbox, sentry data
// like the pipes it counts: each pipe made by pipe(2) is registered with its
// user and pages, and counts while it lives (a weak reference), so a pipe
// gives its pages back when its last end closes.
//
// The callers (pipe(2) and fcntl in sentry/syscalls/sys_file_fd.cc, the
// sysctls in sentry/fs/proc/sys.cc) declare what they use from here
// themselves: declaring it in pipe.h would change a header that every file
// of the kernel sees.
#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>

#include "sentry/base/sweep_schedule.h"
#include "sentry/fs/pipe/pipe.h"

namespace seedvisor::sentry {
namespace {

std::atomic<uint64_t> g_soft_pages{16 * 1024};  // PIPE_DEF_BUFFERS * INR_OPEN_CUR
std::atomic<uint64_t> g_hard_pages{0};

// PIPE_MIN_DEF_BUFFERS: what a pipe past the soft limit gets (two pages
// since Linux 5.18, so that a write after a partial read does not block).
constexpr size_t kMinDefBuffers = 2;

struct Accounted {
  std::weak_ptr<Pipe> pipe;
  uid_t uid = 0;
  uint64_t pages = 0;  // pipe->nr_accounted
};

// The registered pipes, and per user the pages of their registered pipes
// (user_struct's pipe_bufs). A pipe that is gone still counts until a sweep
// finds it expired: a count is an upper bound, exact after a sweep. Checks
// sweep only when the bound is past a limit, and registration sweeps when
// the table has doubled since the last sweep, so each call is O(log n)
// amortised instead of a walk of every pipe (review R12).
std::mutex g_mu;
std::map<const Pipe*, Accounted> g_pipes;           // by g_mu
std::unordered_map<uid_t, uint64_t> g_user_pages;  // by g_mu
SweepSchedule g_sweeps{64};                         // by g_mu

void ForgetLocked(std::map<const Pipe*, Accounted>::iterator it) {
  auto user = g_user_pages.find(it->second.uid);
  user->second -= it->second.pages;
  if (user->second == 0) g_user_pages.erase(user);
  g_pipes.erase(it);
}

void SweepLocked() {
  for (auto it = g_pipes.begin(); it != g_pipes.end();) {
    auto next = std::next(it);
    if (it->second.pipe.expired()) ForgetLocked(it);
    it = next;
  }
  g_sweeps.Swept(g_pipes.size());
}

// An upper bound of the pages of `uid`'s pipes other than `except`.
uint64_t UserPagesBoundLocked(uid_t uid, const Pipe* except) {
  auto user = g_user_pages.find(uid);
  uint64_t pages = user == g_user_pages.end() ? 0 : user->second;
  if (except != nullptr) {
    auto it = g_pipes.find(except);
    if (it != g_pipes.end() && it->second.uid == uid) pages -= it->second.pages;
  }
  return pages;
}

bool TooManySoft(uint64_t pages) {
  const uint64_t limit = g_soft_pages.load();
  return limit != 0 && pages > limit;
}

bool TooManyHard(uint64_t pages) {
  const uint64_t limit = g_hard_pages.load();
  return limit != 0 && pages > limit;
}

// The pages of `uid`'s live pipes other than `except`, exact whenever
// `adding` more would pass a limit (the case that decides anything).
uint64_t UserPagesLocked(uid_t uid, const Pipe* except, uint64_t adding) {
  uint64_t pages = UserPagesBoundLocked(uid, except);
  if (TooManySoft(pages + adding) || TooManyHard(pages + adding)) {
    SweepLocked();
    pages = UserPagesBoundLocked(uid, except);
  }
  return pages;
}

}  // namespace

// In a sandbox fork's child, before any thread but the caller exists (a
// seed thread may have held the lock at the host fork). Kernel::
// ReinitInForkChild declares and calls it.
void ReinitPipeAccountLockInForkChild() {
  // SAFETY: only the calling thread exists; the old lock word is only
  // overwritten.
  new (&g_mu) std::mutex;
}

std::string PipeUserPagesText(bool hard) {
  return std::to_string((hard ? g_hard_pages : g_soft_pages).load()) + "\n";
}

Status SetPipeUserPages(bool hard, std::string_view text) {
  // proc_doulongvec_minmax(): an unsigned long, blanks around it allowed.
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return Errno(EINVAL);
  (hard ? g_hard_pages : g_soft_pages).store(v);
  return {};
}

Status AccountNewPipe(const std::shared_ptr<Pipe>& pipe, uid_t uid, bool limited) {
  std::lock_guard l(g_mu);
  if (g_sweeps.Due(g_pipes.size())) SweepLocked();
  // A pipe that is gone may have left its entry at this address.
  if (auto old = g_pipes.find(pipe.get()); old != g_pipes.end()) ForgetLocked(old);
  uint64_t bufs = pipe->Capacity() / kPipePageSize;
  const uint64_t others = UserPagesLocked(uid, nullptr, bufs);
  if (limited && TooManySoft(others + bufs)) {
    // A new pipe is empty: shrinking it cannot fail.
    Result<size_t> set = pipe->SetCapacity(kMinDefBuffers * kPipePageSize, /*privileged=*/true);
    if (!set.ok()) return set.error();
    bufs = kMinDefBuffers;
  }
  // alloc_pipe_info() fails: get_pipe_inode()'s ENFILE.
  if (limited && TooManyHard(others + bufs)) return Errno(ENFILE);
  g_pipes[pipe.get()] = Accounted{pipe, uid, bufs};
  g_user_pages[uid] += bufs;
  return {};
}

Result<size_t> SetAccountedPipeCapacity(Pipe& pipe, uint64_t size, bool privileged,
                                        bool limited) {
  std::lock_guard l(g_mu);
  auto it = g_pipes.find(&pipe);
  if (it == g_pipes.end() || it->second.pipe.expired()) {
    return pipe.SetCapacity(size, privileged);  // a FIFO's: accounted to nobody
  }
  Accounted& a = it->second;
  // round_pipe_size() as Pipe::SetCapacity does (it answers EINVAL for
  // more than 2 GiB, and EPERM past pipe-max-size, before this check).
  if (size <= (uint64_t{1} << 31)) {
    const uint64_t slots = (size < kPipePageSize ? kPipePageSize : std::bit_ceil(size)) /
                           kPipePageSize;
    const bool over_max = slots * kPipePageSize > PipeMaxSize() && !privileged &&
                          slots > pipe.Capacity() / kPipePageSize;
    if (!over_max && limited && slots > a.pages) {
      const uint64_t pages = UserPagesLocked(a.uid, &pipe, slots) + slots;
      if (TooManyHard(pages) || TooManySoft(pages)) return Errno(EPERM);
    }
  }
  SV_ASSIGN_OR_RETURN(size_t bytes, pipe.SetCapacity(size, privileged));
  // `a` still stands: a sweep above forgets only pipes that are gone.
  g_user_pages[a.uid] = g_user_pages[a.uid] - a.pages + bytes / kPipePageSize;
  a.pages = bytes / kPipePageSize;
  return bytes;
}

}  // namespace seedvisor::sentry
