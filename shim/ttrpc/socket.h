// Unix-socket helpers for ttrpc endpoints.
//
//   ASSIGN_OR_RETURN(int fd, DialUnix("unix:///run/x.sock"));
//   RETURN_IF_ERROR(WriteAll(fd, bytes));
//
// Addresses: "unix:///abs/path" or "/abs/path" name a filesystem socket;
// "@name" names an abstract one (containerd's shim addresses without unix://
// are abstract; $TTRPC_ADDRESS is a plain path).
#ifndef SEEDVISOR_SHIM_TTRPC_SOCKET_H_
#define SEEDVISOR_SHIM_TTRPC_SOCKET_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace seedvisor::ttrpc {

// The path of a "unix://" address, or the address itself.
std::string SocketPath(const std::string& address);

// Binds and listens (backlog 64); removes nothing that exists: a stale socket
// file makes this fail with AlreadyExists.
absl::StatusOr<int> ListenUnix(const std::string& address);
absl::StatusOr<int> DialUnix(const std::string& address);

// Writes everything (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE).
absl::Status WriteAll(int fd, absl::string_view data);
// WriteAll that passes `fds` (SCM_RIGHTS; the sender keeps its copies) with
// the first bytes of `data`: a ttrpc request frame written so brings them
// to its request (Server::set_max_request_fds). At most kMaxSendFds.
inline constexpr size_t kMaxSendFds = 8;
absl::Status WriteAllWithFds(int fd, absl::string_view data, const std::vector<int>& fds);

// Passing one fd over a connected unix socket (SCM_RIGHTS with one byte of
// data, as runc's console socket protocol does):
//
//   RETURN_IF_ERROR(SendFd(sock, pty_master));   // the sender keeps its copy
//   ASSIGN_OR_RETURN(int fd, ReceiveFd(sock));   // close-on-exec, caller owns
//
// Errors say what failed (sendmsg/recvmsg's errno, or that no fd came).
absl::Status SendFd(int sock, int fd);
absl::StatusOr<int> ReceiveFd(int sock);

}  // namespace seedvisor::ttrpc

#endif  // SEEDVISOR_SHIM_TTRPC_SOCKET_H_
