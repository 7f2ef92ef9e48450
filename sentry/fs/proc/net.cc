// /proc/PID/net (and /proc/net -> self/net) with --network=sandbox: the
// sandbox stack's interfaces, routes and sockets (sentry/socket/net_proc.h).
// Other network modes have no /proc/net yet.
#include "sentry/fs/proc/task_files.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/kernel/kernel.h"
#include "sentry/socket/net_proc.h"
#include "sentry/socket/net_service.h"

namespace seedvisor::sentry {

InodeRef NewNetDir(Kernel& k) {
  NetService* net = k.net();
  if (!net) return nullptr;
  auto dir = std::make_shared<SynthDir>(0555);
  netstack::Stack& s = net->stack();
  dir->Add("dev", SynthFile::Text([&s] { return ProcNetDev(StackView(s)); }));
  dir->Add("route", SynthFile::Text([&s] { return ProcNetRoute(StackView(s)); }));
  dir->Add("tcp", SynthFile::Text([&s] { return ProcNetTcp(s.TcpSockets()); }));
  dir->Add("udp", SynthFile::Text([&s] { return ProcNetUdp(s.UdpSockets()); }));
  dir->Add("tcp6", SynthFile::Text([&s] { return ProcNetTcp6(s.TcpSockets()); }));
  dir->Add("udp6", SynthFile::Text([&s] { return ProcNetUdp6(s.UdpSockets()); }));
  dir->Add("if_inet6", SynthFile::Text([&s] { return ProcNetIfInet6(StackView(s)); }));
  dir->Add("ipv6_route", SynthFile::Text([&s] { return ProcNetIpv6Route(StackView(s)); }));
  return dir;
}

}  // namespace seedvisor::sentry
