// The loopback-only network of --network=none.
//
// A helper process, forked once on first use, moves into a network
// namespace of its own (a new user namespace too when the sentry is not
// root) holding just an "up" loopback interface, and then makes sockets on
// request, passing them back over a unix socketpair. A socket stays in the
// namespace it was made in, so the sandbox's AF_INET/AF_INET6 sockets reach
// each other over 127.0.0.1/::1 but neither the host's network nor the
// host's own loopback services. The helper exits when the sentry does (EOF
// on its channel).
//
//   SV_ASSIGN_OR_RETURN(int fd, NetnsSocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
#ifndef SEEDVISOR_SENTRY_SOCKET_NETNS_H_
#define SEEDVISOR_SENTRY_SOCKET_NETNS_H_

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

// Forks the helper now if it is not running yet. Kernel::Create calls it
// while the sentry may still fork (before its seccomp filter is installed);
// without it NetnsSocket fails with EAFNOSUPPORT.
void StartLoopbackNetwork();

// socket(2) in the private namespace; the result is O_CLOEXEC. EAFNOSUPPORT
// if the namespace could not be made.
Result<int> NetnsSocket(int domain, int type, int protocol);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NETNS_H_
