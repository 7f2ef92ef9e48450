// What a guest may ask of a host socket. The sentry makes host sockets (and
// sets their options) with its own privileges, which are the host's root's,
// so every check Linux does against the caller's capabilities has to be done
// here against the guest's, before the host sees the request. The lists are
// allowlists: a socket type, option or control message not named here is
// refused, because an unknown one may carry a pointer into guest memory (the
// host would read the sentry's), an fd number (the host would use the
// sentry's fd table), or need a capability the host would find in the
// sentry (iptables via IPT_SO_SET_REPLACE, TCP_REPAIR, module autoloading
// through TCP_ULP or an unknown protocol).
//
//   NetPrivileges p = NetPrivilegesOf(t);
//   SV_TRY(CheckHostSocket(p, AF_INET, SOCK_RAW, IPPROTO_ICMP));   // EPERM without CAP_NET_RAW
//   SV_TRY(CheckHostSetSockOpt(p, {AF_INET, SOCK_DGRAM}, SOL_SOCKET, SO_MARK, val));
//
// The rules follow Linux 6.x (net/core/sock.c sk_setsockopt(),
// net/ipv4/ip_sockglue.c, net/ipv6/ipv6_sockglue.c, net/ipv4/af_inet.c
// inet_create(), net/packet/af_packet.c packet_create(), net/ipv4/ping.c
// ping_init_sock()); each rule cites its function.
#ifndef SEEDVISOR_SENTRY_SOCKET_HOST_POLICY_H_
#define SEEDVISOR_SENTRY_SOCKET_HOST_POLICY_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

// The guest's network privileges, as the policy needs them.
struct NetPrivileges {
  // CAP_NET_RAW in the guest's effective set *and* raw sockets enabled for
  // the sandbox (runsc's --net-raw; without it runsc takes CAP_NET_RAW away
  // from the container, so nothing that needs it works).
  bool net_raw = false;
  bool net_admin = false;  // CAP_NET_ADMIN
  gid_t egid = 0;
  std::vector<gid_t> groups;
  // net.ipv4.ping_group_range of the host network: who may open ping
  // sockets (SOCK_DGRAM + IPPROTO_ICMP/ICMPV6). Empty when low > high, the
  // kernel's default "1 0".
  gid_t ping_low = 1, ping_high = 0;
};

// What the policy needs to know about a socket.
struct HostSocketKind {
  int family = 0;  // AF_INET, AF_INET6, AF_NETLINK
  int type = 0;    // SOCK_STREAM, SOCK_DGRAM, SOCK_RAW (no flags)
  // SO_BINDTODEVICE: whether the socket is bound to a device already
  // (changing a binding needs CAP_NET_RAW, making one does not).
  bool bound_to_device = false;
};

// socket(2) of `domain` (AF_INET, AF_INET6, AF_PACKET) for a host socket.
// SOCK_RAW and packet sockets need CAP_NET_RAW (EPERM); ping sockets need
// the egid or a supplementary group in ping_group_range (EACCES); only TCP
// and UDP otherwise (EPROTONOSUPPORT, ESOCKTNOSUPPORT): the host must never
// autoload a protocol module (SCTP, DCCP, ...) on the guest's behalf.
// Packet sockets (AF_PACKET, and AF_INET+SOCK_PACKET, which Linux turns into
// AF_PACKET) are EAFNOSUPPORT even with the capability: not implemented.
Status CheckHostSocket(const NetPrivileges& p, int domain, int type, int protocol);

// setsockopt(2) on a host socket.
Status CheckHostSetSockOpt(const NetPrivileges& p, const HostSocketKind& s, int level, int name,
                           std::string_view val);

// getsockopt(2) on a host socket: options that only read the socket's own
// state; not those that install an fd (SO_PEERPIDFD), take a guest pointer
// (TCP_ZEROCOPY_RECEIVE) or read the host's firewall (IPT_SO_GET_*).
Status CheckHostGetSockOpt(const HostSocketKind& s, int level, int name);

// The error of a getsockopt(2) on an inet socket at a level nothing of it
// serves. An AF_INET socket hands a level its protocol does not own
// (tcp_getsockopt(), udp_getsockopt(), raw_getsockopt()) to
// ip_getsockopt(), which answers EOPNOTSUPP for every level but SOL_IP
// (do_ip_getsockopt()); AF_INET6's ipv6_getsockopt() answers ENOPROTOOPT.
// An unknown option at a level the socket does serve is ENOPROTOOPT on both.
// setsockopt(2) is ENOPROTOOPT in every one of these cases.
Errno InetGetSockOptLevelError(int family, int type, int level);

// The control messages of a sendmsg(2) on a host inet socket
// (ip_cmsg_send(), ip6_datagram_send_ctl(), __sock_cmsg_send()). EINVAL for
// a malformed buffer or a message the sandbox does not pass on.
Status CheckHostSendControl(const NetPrivileges& p, const HostSocketKind& s,
                            std::string_view control);

// TCP_CONGESTION names the guest may choose: without CAP_NET_ADMIN those in
// net.ipv4.tcp_allowed_congestion_control, with it those available
// (tcp_available_congestion_control); never one the host would have to load
// (tcp_set_congestion_control() autoloads for CAP_NET_ADMIN callers).
bool CongestionControlAllowed(bool net_admin, std::string_view name);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_HOST_POLICY_H_
