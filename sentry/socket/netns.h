// The loopback-only network of --network=none.
//
// A sentry thread moves into a network namespace of its own holding just an
// "up" loopback interface (needs CAP_SYS_ADMIN: the sentry runs as root) and
// makes the sandbox's AF_INET/AF_INET6 sockets there on request. A socket
// stays in the namespace it was made in, so the sandbox's sockets reach each
// other over 127.0.0.1/::1 but neither the host's network nor the host's own
// loopback services. (A helper process would do too, but a process of ours
// outliving the sentry's wait for its children is worse than a thread.)
//
//   SV_ASSIGN_OR_RETURN(int fd, NetnsSocket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
#ifndef SEEDVISOR_SENTRY_SOCKET_NETNS_H_
#define SEEDVISOR_SENTRY_SOCKET_NETNS_H_

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

// Starts the thread if it is not running yet and waits until its namespace
// is up. Kernel::Create calls it before the seccomp filter is installed
// (unshare and SIOCSIFFLAGS are not in the policy); later first calls fail.
// Returns 0, or EAGAIN/ENOMEM if the host refused the thread (the next
// call tries again).
int StartLoopbackNetwork();

// OCI mode: `seedsc create` started the sandbox process in a network
// namespace of its own already. Brings its loopback interface up (needs
// CAP_NET_ADMIN: call before capabilities are dropped) and makes the
// sandbox's sockets in the process's namespace from then on, with no helper
// thread; a later StartLoopbackNetwork does nothing. Returns 0 or the errno.
int UseOwnNetworkNamespace();

// socket(2) in the private namespace; the result is O_CLOEXEC. EAFNOSUPPORT
// if the namespace could not be made, EAGAIN/ENOMEM if the host refused
// its thread.
Result<int> NetnsSocket(int domain, int type, int protocol);

// Sandbox fork, in the forked sentry: the seed's helper thread does not
// exist here, and its namespace is the seed's. Forget both: the child's own
// helper starts (in a namespace of its own) when its guest first needs one.
void ResetLoopbackNetworkInForkChild();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_NETNS_H_
