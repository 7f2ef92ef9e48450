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
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

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

std::mutex g_mu;
std::map<const Pipe*, Accounted> g_pipes;  // by g_mu

// The pages of `uid`'s live pipes (user_struct's pipe_bufs), without
// `except`; forgets the pipes that are gone. O(pipes).
uint64_t UserPagesLocked(uid_t uid, const Pipe* except = nullptr) {
  uint64_t pages = 0;
  for (auto it = g_pipes.begin(); it != g_pipes.end();) {
    if (it->second.pipe.expired()) {
      it = g_pipes.erase(it);
      continue;
    }
    if (it->second.uid == uid && it->first != except) pages += it->second.pages;
    ++it;
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

}  // namespace

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

uint64_t PipeUserPages(uid_t uid) {
  std::lock_guard l(g_mu);
  return UserPagesLocked(uid);
}

Status AccountNewPipe(const std::shared_ptr<Pipe>& pipe, uid_t uid, bool limited) {
  std::lock_guard l(g_mu);
  uint64_t bufs = pipe->Capacity() / kPipePageSize;
  const uint64_t others = UserPagesLocked(uid, pipe.get());
  if (limited && TooManySoft(others + bufs)) {
    // A new pipe is empty: shrinking it cannot fail.
    Result<size_t> set = pipe->SetCapacity(kMinDefBuffers * kPipePageSize, /*privileged=*/true);
    if (!set.ok()) return set.error();
    bufs = kMinDefBuffers;
  }
  // alloc_pipe_info() fails: get_pipe_inode()'s ENFILE.
  if (limited && TooManyHard(others + bufs)) return Errno(ENFILE);
  g_pipes[pipe.get()] = Accounted{pipe, uid, bufs};
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
      const uint64_t pages = UserPagesLocked(a.uid, &pipe) + slots;
      if (TooManyHard(pages) || TooManySoft(pages)) return Errno(EPERM);
    }
  }
  SV_ASSIGN_OR_RETURN(size_t bytes, pipe.SetCapacity(size, privileged));
  a.pages = bytes / kPipePageSize;
  return bytes;
}

}  // namespace seedvisor::sentry
