#include "sentry/socket/netlink_route.h"

#include <errno.h>
#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <string.h>

namespace seedvisor::sentry {

namespace {

// One netlink message under construction: header first, attributes
// appended 4-byte aligned, the length patched by Finish().
class MsgBuilder {
 public:
  MsgBuilder(uint16_t type, uint16_t flags, uint32_t seq, uint32_t port) {
    nlmsghdr h{};
    h.nlmsg_type = type;
    h.nlmsg_flags = flags;
    h.nlmsg_seq = seq;
    h.nlmsg_pid = port;
    Put(&h, sizeof(h));
  }
  void Put(const void* p, size_t n) {
    buf_.append(static_cast<const char*>(p), n);
    buf_.resize(NLMSG_ALIGN(buf_.size()), '\0');
  }
  void Attr(uint16_t type, const void* p, size_t n) {
    rtattr a{};
    a.rta_len = static_cast<uint16_t>(RTA_LENGTH(n));
    a.rta_type = type;
    buf_.append(reinterpret_cast<const char*>(&a), sizeof(a));
    Put(p, n);
  }
  void AttrU32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof(v)); }
  void AttrU8(uint16_t type, uint8_t v) { Attr(type, &v, sizeof(v)); }
  void AttrStr(uint16_t type, const char* s) { Attr(type, s, strlen(s) + 1); }
  std::string Finish() {
    uint32_t len = static_cast<uint32_t>(buf_.size());
    memcpy(buf_.data(), &len, sizeof(len));  // nlmsg_len is the first field
    return std::move(buf_);
  }

 private:
  std::string buf_;
};

// rtnl_fill_ifinfo() for one interface.
std::string LinkMsg(const NetInterface& i, uint16_t flags, uint32_t seq, uint32_t port) {
  MsgBuilder m(RTM_NEWLINK, flags, seq, port);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_type = i.arp_type();
  ifi.ifi_index = i.index;
  ifi.ifi_flags = i.flags();
  m.Put(&ifi, sizeof(ifi));
  m.AttrStr(IFLA_IFNAME, i.name.c_str());
  m.AttrU32(IFLA_TXQLEN, 1000);
  // lo reports IF_OPER_UNKNOWN; a veth that is up, IF_OPER_UP.
  m.AttrU8(IFLA_OPERSTATE, i.loopback ? IF_OPER_UNKNOWN : IF_OPER_UP);
  m.AttrU8(IFLA_LINKMODE, 0);
  m.AttrU32(IFLA_MTU, i.mtu);
  m.Attr(IFLA_ADDRESS, i.mac.data(), i.mac.size());
  uint8_t brd[6];
  memset(brd, i.loopback ? 0 : 0xff, sizeof(brd));
  m.Attr(IFLA_BROADCAST, brd, sizeof(brd));
  m.AttrStr(IFLA_QDISC, "noqueue");
  m.AttrU32(IFLA_GROUP, 0);  // INIT_NETDEV_GROUP: `ip` prints "group default"
  rtnl_link_stats64 st{};
  st.rx_packets = i.rx_packets;
  st.tx_packets = i.tx_packets;
  st.rx_bytes = i.rx_bytes;
  st.tx_bytes = i.tx_bytes;
  m.Attr(IFLA_STATS64, &st, sizeof(st));
  return m.Finish();
}

// inet_fill_ifaddr() / inet6_fill_ifaddr() for one address; `a` null: ::1.
std::string AddrMsg(const NetInterface& i, const netstack::AddrPrefix* a, uint32_t seq,
                    uint32_t port) {
  MsgBuilder m(RTM_NEWADDR, NLM_F_MULTI, seq, port);
  ifaddrmsg ifa{};
  bool v4 = a && a->addr.is_v4();
  ifa.ifa_family = v4 ? AF_INET : AF_INET6;
  ifa.ifa_prefixlen = static_cast<uint8_t>(a ? a->prefix_len : 128);
  ifa.ifa_flags = IFA_F_PERMANENT;
  // Loopback addresses are host-scoped (inet_insert_ifa() via
  // ipv4_is_loopback; addrconf for ::1), fe80::/10 link-scoped, the rest
  // global.
  ifa.ifa_scope = (!a || a->addr.loopback()) ? RT_SCOPE_HOST
                  : a->addr.link_local()     ? RT_SCOPE_LINK
                                             : RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<uint32_t>(i.index);
  m.Put(&ifa, sizeof(ifa));
  if (a && !v4) {
    m.Attr(IFA_ADDRESS, a->addr.b.data(), 16);
  } else if (a) {
    in_addr v{htonl(a->addr.v4().v)};
    m.Attr(IFA_ADDRESS, &v, sizeof(v));
    m.Attr(IFA_LOCAL, &v, sizeof(v));
    // Only if the interface had one (`ip addr add A/N brd +`, DHCP).
    if (!a->brd.any()) {
      in_addr b{htonl(a->brd.v)};
      m.Attr(IFA_BROADCAST, &b, sizeof(b));
    }
    m.AttrStr(IFA_LABEL, i.name.c_str());
  } else {
    m.Attr(IFA_ADDRESS, &in6addr_loopback, sizeof(in6addr_loopback));
  }
  m.AttrU32(IFA_FLAGS, IFA_F_PERMANENT);
  ifa_cacheinfo ci{};
  ci.ifa_prefered = ci.ifa_valid = 0xffffffffu;  // forever
  m.Attr(IFA_CACHEINFO, &ci, sizeof(ci));
  return m.Finish();
}

// What every route message starts with, in both families: the rtmsg
// header and RTA_TABLE (NetRoute and NetRoute6 name these fields alike).
template <typename Route>
void PutRouteHead(MsgBuilder& m, const Route& r, uint8_t family, uint8_t scope) {
  rtmsg rt{};
  rt.rtm_family = family;
  rt.rtm_dst_len = static_cast<uint8_t>(r.dst.prefix_len);
  rt.rtm_table = r.table;
  rt.rtm_protocol = r.protocol;
  rt.rtm_scope = scope;
  rt.rtm_type = r.type;
  m.Put(&rt, sizeof(rt));
  m.AttrU32(RTA_TABLE, r.table);
}

// fib_dump_info() for one IPv4 route.
std::string RouteMsg(const NetRoute& r, uint32_t seq, uint32_t port) {
  MsgBuilder m(RTM_NEWROUTE, NLM_F_MULTI, seq, port);
  PutRouteHead(m, r, AF_INET, r.scope);
  if (r.dst.prefix_len > 0) {
    in_addr d{htonl(r.dst.addr.v4().v)};
    m.Attr(RTA_DST, &d, sizeof(d));
  }
  if (!r.prefsrc.any()) {
    in_addr p{htonl(r.prefsrc.v)};
    m.Attr(RTA_PREFSRC, &p, sizeof(p));
  }
  if (!r.gateway.any()) {
    in_addr g{htonl(r.gateway.v)};
    m.Attr(RTA_GATEWAY, &g, sizeof(g));
  }
  m.AttrU32(RTA_OIF, static_cast<uint32_t>(r.index));
  return m.Finish();
}

// rt6_fill_node() for one IPv6 route.
std::string RouteMsg6(const NetRoute6& r, uint32_t seq, uint32_t port) {
  MsgBuilder m(RTM_NEWROUTE, NLM_F_MULTI, seq, port);
  PutRouteHead(m, r, AF_INET6, RT_SCOPE_UNIVERSE);
  if (r.dst.prefix_len > 0) m.Attr(RTA_DST, r.dst.addr.b.data(), 16);
  if (!r.gateway.zero()) m.Attr(RTA_GATEWAY, r.gateway.b.data(), 16);
  m.AttrU32(RTA_OIF, static_cast<uint32_t>(r.index));
  m.AttrU32(RTA_PRIORITY, r.metric);
  rta_cacheinfo ci{};
  m.Attr(RTA_CACHEINFO, &ci, sizeof(ci));
  m.AttrU8(RTA_PREF, 0);  // ICMPV6_ROUTER_PREF_MEDIUM
  return m.Finish();
}

std::string DoneMsg(uint32_t seq, uint32_t port) {
  MsgBuilder m(NLMSG_DONE, NLM_F_MULTI, seq, port);
  int32_t zero = 0;
  m.Put(&zero, sizeof(zero));
  return m.Finish();
}

// netlink_ack(): an error echoes the whole request; a plain ack (err 0) only
// its header and says so with NLM_F_CAPPED.
std::string ErrorMsg(const nlmsghdr& req, std::string_view whole, int err, uint32_t port) {
  MsgBuilder m(NLMSG_ERROR, err ? 0 : NLM_F_CAPPED, req.nlmsg_seq, port);
  int32_t e = -err;
  std::string body(reinterpret_cast<const char*>(&e), sizeof(e));
  body.append(err ? whole : whole.substr(0, sizeof(nlmsghdr)));
  m.Put(body.data(), body.size());
  return m.Finish();
}

// The IFLA_IFNAME of a GETLINK request's attributes, or "" if none.
std::string IfNameAttr(std::string_view attrs) {
  while (attrs.size() >= sizeof(rtattr)) {
    rtattr a;
    memcpy(&a, attrs.data(), sizeof(a));
    if (a.rta_len < sizeof(rtattr) || a.rta_len > attrs.size()) break;
    if (a.rta_type == IFLA_IFNAME) {
      std::string_view v = attrs.substr(sizeof(rtattr), a.rta_len - sizeof(rtattr));
      return std::string(v.substr(0, v.find('\0')));
    }
    attrs.remove_prefix(std::min<size_t>(RTA_ALIGN(a.rta_len), attrs.size()));
  }
  return "";
}

// rtnetlink_rcv_msg() for one request: appends replies, returns 0 or an
// errno that the caller turns into an NLMSG_ERROR. Dumps never ack.
int HandleOne(const NetView& view, const nlmsghdr& h, std::string_view whole, uint32_t port,
              std::vector<std::string>* out, bool* acked) {
  std::string_view payload = whole.substr(sizeof(nlmsghdr));
  int type = h.nlmsg_type;
  if (type > RTM_MAX) return EOPNOTSUPP;
  bool get = ((type - RTM_BASE) & 3) == 2;
  if (!get) return EOPNOTSUPP;  // no changes to the sandbox's network
  // A request too short for its family byte is skipped (rtnetlink_rcv_msg()).
  if (payload.empty()) return 0;
  if ((h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP) {
    *acked = true;  // a dump answers with its messages and NLMSG_DONE
    int family = static_cast<uint8_t>(payload[0]);
    if (type == RTM_GETLINK) {
      for (const NetInterface& i : view.interfaces) {
        out->push_back(LinkMsg(i, NLM_F_MULTI, h.nlmsg_seq, port));
      }
    } else if (type == RTM_GETADDR) {
      // In interface order, IPv4 first (rtnl_dump_all() walks the families).
      if (family == AF_UNSPEC || family == AF_INET) {
        for (const NetInterface& i : view.interfaces) {
          for (const netstack::AddrPrefix& a : i.v4) {
            out->push_back(AddrMsg(i, &a, h.nlmsg_seq, port));
          }
        }
      }
      if (family == AF_UNSPEC || family == AF_INET6) {
        for (const NetInterface& i : view.interfaces) {
          if (i.v6_loopback) out->push_back(AddrMsg(i, nullptr, h.nlmsg_seq, port));
          for (const netstack::AddrPrefix& a : i.v6) {
            out->push_back(AddrMsg(i, &a, h.nlmsg_seq, port));
          }
        }
      }
    } else if (type == RTM_GETROUTE) {
      if (family == AF_UNSPEC || family == AF_INET) {
        for (const NetRoute& r : view.routes) out->push_back(RouteMsg(r, h.nlmsg_seq, port));
      }
      if (family == AF_UNSPEC || family == AF_INET6) {
        for (const NetRoute6& r : view.routes6) out->push_back(RouteMsg6(r, h.nlmsg_seq, port));
      }
    }
    // Every other table (neighbours, rules, qdiscs) is empty.
    out->push_back(DoneMsg(h.nlmsg_seq, port));
    return 0;
  }
  if (type != RTM_GETLINK) return EOPNOTSUPP;
  if (payload.size() < sizeof(ifinfomsg)) return EINVAL;
  ifinfomsg ifi;
  memcpy(&ifi, payload.data(), sizeof(ifi));
  const NetInterface* i = nullptr;
  if (ifi.ifi_index > 0) {
    i = view.Find(ifi.ifi_index);
  } else {
    std::string name = IfNameAttr(payload.substr(NLMSG_ALIGN(sizeof(ifinfomsg))));
    if (name.empty()) return EINVAL;
    i = view.Find(name);
  }
  if (!i) return ENODEV;
  out->push_back(LinkMsg(*i, 0, h.nlmsg_seq, port));
  return 0;
}

// Calls `f(header, whole_message)` for each well-formed message of `batch`
// until it returns false; stops silently at a malformed one.
template <typename F>
bool ForEachMessage(std::string_view batch, F f) {
  while (batch.size() >= sizeof(nlmsghdr)) {
    nlmsghdr h;
    memcpy(&h, batch.data(), sizeof(h));
    if (h.nlmsg_len < sizeof(nlmsghdr) || h.nlmsg_len > batch.size()) return false;
    if (!f(h, batch.substr(0, h.nlmsg_len))) return false;
    batch.remove_prefix(std::min<size_t>(NLMSG_ALIGN(h.nlmsg_len), batch.size()));
  }
  return true;
}

}  // namespace

void HandleRouteRequests(const NetView& view, std::string_view batch, uint32_t port,
                         std::vector<std::string>* out) {
  ForEachMessage(batch, [&](const nlmsghdr& h, std::string_view whole) {
    int err = 0;
    bool acked = false;
    // Only requests reach the kernel; control types (NOOP, ERROR, DONE,
    // OVERRUN) are skipped (netlink_rcv_skb()).
    if ((h.nlmsg_flags & NLM_F_REQUEST) && h.nlmsg_type >= NLMSG_MIN_TYPE) {
      err = HandleOne(view, h, whole, port, out, &acked);
    }
    if (err || ((h.nlmsg_flags & NLM_F_ACK) && !acked)) {
      out->push_back(ErrorMsg(h, whole, err, port));
    }
    return true;
  });
}

bool RouteBatchIsReadOnly(std::string_view batch) {
  return ForEachMessage(batch, [](const nlmsghdr& h, std::string_view) {
    if (!(h.nlmsg_flags & NLM_F_REQUEST) || h.nlmsg_type < NLMSG_MIN_TYPE) return true;
    return h.nlmsg_type <= RTM_MAX && ((h.nlmsg_type - RTM_BASE) & 3) == 2;
  });
}

}  // namespace seedvisor::sentry
