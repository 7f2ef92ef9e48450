// /proc/PID/net (and /proc/net -> self/net) with --network=sandbox: the
// sandbox stack's interfaces, routes and sockets (sentry/socket/net_proc.h).
// Other network modes have no /proc/net yet.
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

InodeRef NewSysNetIpv4Dir(Kernel& k) {
  NetService* net = k.net();
  if (!net) return nullptr;
  auto dir = std::make_shared<SynthDir>(0555);
  // ipv4_ping_group_range(): "low\thigh"; root writes one or two gids
  // (0..4294967294, else EINVAL; one keeps the old high end); a reversed
  // range becomes "1 0" (none).
  auto range = std::make_shared<SynthFile>(
      [net]() -> Result<std::string> {
        NetService::GroupRange r = net->ping_group_range();
        return absl::StrCat(r.lo, "\t", r.hi, "\n");
      },
      0644);
  range->set_write([net](std::string_view text) -> Status {
    std::vector<absl::string_view> parts =
        absl::StrSplit(absl::string_view(text.data(), text.size()), absl::ByAnyChar(" \t\n"),
                       absl::SkipEmpty());
    if (parts.empty() || parts.size() > 2) return Errno(EINVAL);
    NetService::GroupRange r = net->ping_group_range();
    uint32_t* out[2] = {&r.lo, &r.hi};
    for (size_t i = 0; i < parts.size(); ++i) {
      int64_t v;
      if (!absl::SimpleAtoi(parts[i], &v) || v < 0 || v > 4294967294) return Errno(EINVAL);
      *out[i] = uint32_t(v);
    }
    if (r.hi < r.lo) r = {1, 0};
    net->set_ping_group_range(r);
    return {};
  });
  dir->Add("ping_group_range", range);
  return dir;
}

}  // namespace seedvisor::sentry
