// Helpers shared by unix_socket*.cc (not an API).
#ifndef SEEDVISOR_SENTRY_SOCKET_UNIX_SOCKET_INTERNAL_H_
#define SEEDVISOR_SENTRY_SOCKET_UNIX_SOCKET_INTERNAL_H_

#include <sys/socket.h>
#include <time.h>

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "sentry/kernel/task.h"
#include "sentry/socket/socket.h"
#include "sentry/socket/unix_socket.h"
#include "sentry/vfs/waiter.h"

namespace seedvisor::sentry::unix_internal {

// The lock of every unix socket's state.
std::mutex& Mu();
// Unix sockets queued as SCM_RIGHTS files in receive queues, with how many
// times each is queued (unix_tot_inflight, per socket); guarded by Mu().
// Only these can be in a cycle that nothing else holds (an embryo is queued
// only on its listener, which an embryo never is), so the collection starts
// from them.
std::unordered_map<UnixSocket*, size_t>& Passed();
// Files in flight by user (too_many_unix_fds(): user->unix_inflight);
// guarded by Mu().
std::map<uid_t, size_t>& UserInflight();
// Releases `g` (after the lock). A socket released here that releases more
// adds them to the same loop instead of going deeper: a guest may queue
// sockets in sockets a million deep.
void Reap(std::vector<FileRef> g);
// True inside Reap's loop on this thread.
bool Reaping();

inline ucred CredOf(Task& t) { return ucred{t.tgid(), t.creds().euid, t.creds().egid}; }

// Linux 6.5's, newer than our headers.
inline constexpr int kSoPassPidfd = 76;  // SO_PASSPIDFD
inline constexpr int kSoPeerPidfd = 77;  // SO_PEERPIDFD
inline constexpr int kScmPidfd = 0x04;   // SCM_PIDFD

// A new pidfd (a file, not installed) of `tg`, which may be gone already
// (a stale pidfd, as pidfd_prepare(PIDFD_STALE)).
Result<FileRef> NewPidfd(Task& t, std::shared_ptr<ThreadGroup> tg);

inline constexpr int kRcvShutdown = 1;   // RCV_SHUTDOWN
inline constexpr int kSendShutdown = 2;  // SEND_SHUTDOWN
inline constexpr size_t kMaxFds = 253;   // SCM_MAX_FD
// An skb's overhead beyond its data (SIOCOUTQ of a 1-byte send is 768).
inline constexpr size_t kSkbOverhead = 704;
inline size_t Truesize(size_t len) { return kSkbOverhead + ((len + 63) & ~size_t{63}); }

// net.core.wmem_default/rmem_default/wmem_max/rmem_max and
// net.unix.max_dgram_qlen, as the host says (read once).
struct NetLimits {
  size_t wmem_default, rmem_default, wmem_max, rmem_max;
  int max_dgram_qlen;
};
const NetLimits& Limits();

// SO_RCVTIMEO/SO_SNDTIMEO as a deadline from now (none if 0).
struct SockDeadline {
  timespec ts{};
  bool set = false;
  const timespec* get() const { return set ? &ts : nullptr; }
};
SockDeadline DeadlineOf(const Socket& s, bool send);

// Parks `t` on `q` with `l` dropped. EAGAIN when the deadline passes; a
// signal is ERESTARTSYS, or ERESTARTNOHAND with a deadline (EINTR if a
// handler runs: sock_intr_errno()); a sandbox pause restarts either.
Status Wait(WaitQueue& q, Task& t, std::unique_lock<std::mutex>& l, const SockDeadline& d);
// EAGAIN unless `block`; else Wait().
inline Status WaitIfBlocking(bool block, WaitQueue& q, Task& t, std::unique_lock<std::mutex>& l,
                             const SockDeadline& d) {
  if (!block) return Errno(EAGAIN);
  return Wait(q, t, l, d);
}

}  // namespace seedvisor::sentry::unix_internal

#endif  // SEEDVISOR_SENTRY_SOCKET_UNIX_SOCKET_INTERNAL_H_
