#include "sentry/control/net_device.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace seedvisor::control {
namespace {

using netstack::IpAddr;

std::string Bytes(const IpAddr& a) { return std::string(a.b.begin(), a.b.end()); }

absl::StatusOr<IpAddr> Addr(const std::string& b, const char* field) {
  if (b.empty()) return IpAddr{};
  if (b.size() != 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("fork: net_device.", field, ": ", b.size(), " bytes, not 16"));
  }
  return IpAddr::FromBytes(reinterpret_cast<const uint8_t*>(b.data()));
}

}  // namespace

v1::NetDevice NetDeviceToProto(const sentry::HostInterface& i) {
  v1::NetDevice d;
  d.set_name(i.name);
  d.set_mac(std::string(i.mac.begin(), i.mac.end()));
  d.set_mtu(i.mtu);
  if (!i.addr.any()) {
    v1::NetAddress* a = d.add_addresses();
    a->set_addr(Bytes(i.addr));
    a->set_prefix_len(uint32_t(i.prefix_len));
    if (!i.broadcast.any()) a->set_broadcast(Bytes(i.broadcast));
  }
  for (const netstack::AddrPrefix& p : i.v6) {
    v1::NetAddress* a = d.add_addresses();
    a->set_addr(Bytes(p.addr));
    a->set_prefix_len(uint32_t(p.prefix_len));
  }
  if (!i.gateway.any()) d.set_gateway4(Bytes(i.gateway));
  if (!i.gateway6.any()) d.set_gateway6(Bytes(i.gateway6));
  return d;
}

absl::StatusOr<sentry::HostInterface> NetDeviceFromProto(const v1::NetDevice& d) {
  sentry::HostInterface i;
  if (d.name().empty() || d.name().size() >= 16) {
    return absl::InvalidArgumentError("fork: net_device.name: must be 1-15 characters");
  }
  i.name = d.name();
  if (d.mac().size() != 6) return absl::InvalidArgumentError("fork: net_device.mac: not 6 bytes");
  memcpy(i.mac.data(), d.mac().data(), 6);
  i.mtu = d.mtu();
  for (const v1::NetAddress& a : d.addresses()) {
    absl::StatusOr<IpAddr> ip = Addr(a.addr(), "addresses.addr");
    if (!ip.ok()) return ip.status();
    if (a.prefix_len() > (ip->is_v4() ? 32u : 128u)) {
      return absl::InvalidArgumentError(
          absl::StrCat("fork: net_device: prefix length ", a.prefix_len(), " of ",
                       netstack::FormatIp(*ip)));
    }
    if (ip->is_v4()) {
      if (!i.addr.any()) continue;  // the first IPv4 address, as boot takes
      i.addr = ip->v4();
      i.prefix_len = int(a.prefix_len());
      absl::StatusOr<IpAddr> brd = Addr(a.broadcast(), "addresses.broadcast");
      if (!brd.ok()) return brd.status();
      i.broadcast = brd->v4();
    } else {
      i.v6.push_back({*ip, int(a.prefix_len())});
    }
  }
  absl::StatusOr<IpAddr> gw4 = Addr(d.gateway4(), "gateway4");
  if (!gw4.ok()) return gw4.status();
  i.gateway = gw4->v4();
  absl::StatusOr<IpAddr> gw6 = Addr(d.gateway6(), "gateway6");
  if (!gw6.ok()) return gw6.status();
  i.gateway6 = *gw6;
  return i;
}

}  // namespace seedvisor::control
