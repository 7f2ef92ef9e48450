// `seedsc do --network=sandbox` without --netns: the sandbox's own network
// namespace and a veth pair, made here and gone with the sandbox.
//
// MakeSandboxNetwork() moves the calling thread (seedsc's only thread at
// that point) into a new network namespace, creates a veth pair there,
// sends its peer back to the caller's namespace as the "host end" (named
// svd<pid>, with the host address and the on-link route it implies, up)
// and gives the sandbox end (eth0 in the new namespace) the guest address.
// The sandbox then takes eth0 over as with --netns. There is no default
// route and no NAT: the guest reaches the host end's address and nothing
// else, and the host reaches the guest.
//
// Nothing needs removing: the new namespace lives as long as a process is
// in it (seedsc and its stubs), and when it goes the kernel deletes eth0
// and with it the host end, also after a SIGKILL.
//
//   SandboxAddrs a = *ParseSandboxIp("192.168.10.2/24");
//   SV_RETURN_IF_ERROR(MakeSandboxNetwork(a, getpid()));
#ifndef SEEDVISOR_RUNSC_DO_NETWORK_H_
#define SEEDVISOR_RUNSC_DO_NETWORK_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace seedvisor::runsc {

// runsc do's default --ip.
inline constexpr char kDefaultSandboxIp[] = "192.168.10.2/24";

struct SandboxAddrs {
  uint32_t guest = 0;  // host byte order
  uint32_t host = 0;   // the host end: .1 of the subnet (.2 if the guest is .1)
  int prefix_len = 24;
};

// "A.B.C.D" (a /24) or "A.B.C.D/N" with N in 8..30; the guest address must
// be neither the subnet's network nor its broadcast address.
absl::StatusOr<SandboxAddrs> ParseSandboxIp(const std::string& ip);

// The host end's name for seedsc's pid `pid`.
std::string HostEndName(pid_t pid);

// On failure nothing it made is left (the thread stays in the new
// namespace).
absl::Status MakeSandboxNetwork(const SandboxAddrs& a, pid_t pid);
// The same with the host end named `host_end` (at most 15 bytes): a pool's
// devices (seedd/veth_pool.h).
absl::Status MakeSandboxNetwork(const SandboxAddrs& a, const std::string& host_end);

// Deletes the interface `name` of the calling thread's network namespace;
// a veth's peer goes with it at once, in whatever namespace it is (the
// kernel's veth_dellink()). OK if there is no such interface.
absl::Status DeleteLink(const std::string& name);

}  // namespace seedvisor::runsc

#endif  // SEEDVISOR_RUNSC_DO_NETWORK_H_
