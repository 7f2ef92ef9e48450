#include "netstack/shared/port_table.h"

namespace seedvisor::netstack {

namespace {

// Which families a binding receives: bit 0 IPv4, bit 1 IPv6.
int Families(const PortTable::User& u) {
  if (!u.ip.any()) return u.ip.is_v4() ? 1 : 2;
  if (!u.v6) return 1;
  return u.v6only ? 2 : 3;
}

}  // namespace

bool PortTable::Conflicts(uint16_t port, const User& u) const {
  auto [b, e] = users_.equal_range(port);
  for (auto it = b; it != e; ++it) {
    const User& o = *it->second;
    if (&o == &u) continue;
    bool overlap = (Families(o) & Families(u)) && (o.ip.any() || u.ip.any() || o.ip == u.ip);
    if (!overlap) continue;
    // inet_bind_conflict(): only the *other* socket's state matters, so a
    // restarted server with SO_REUSEADDR can listen beside TIME_WAITs.
    if (o.reuse && u.reuse && !o.listening) continue;
    if (o.reuseport && u.reuseport && o.uid == u.uid) continue;
    return true;
  }
  return false;
}

bool PortTable::Bind(uint16_t port, User* u) {
  if (port == 0 || Conflicts(port, *u)) return false;
  u->port = port;
  users_.emplace(port, u);
  return true;
}

uint16_t PortTable::BindEphemeral(uint32_t offset, User* u) {
  constexpr uint32_t n = kEphemeralHigh - kEphemeralLow + 1;
  for (uint32_t i = 0; i < n; ++i) {
    uint16_t port = uint16_t(kEphemeralLow + (offset + next_ + i) % n);
    // An ephemeral port is never shared, whatever SO_REUSEADDR says.
    if (users_.count(port)) continue;
    next_ += i + 1;
    u->port = port;
    users_.emplace(port, u);
    return port;
  }
  return 0;
}

void PortTable::AddShared(uint16_t port, User* u) {
  u->port = port;
  users_.emplace(port, u);
}

void PortTable::Unbind(User* u) {
  auto [b, e] = users_.equal_range(u->port);
  for (auto it = b; it != e; ++it) {
    if (it->second == u) {
      users_.erase(it);
      break;
    }
  }
  u->port = 0;
}

}  // namespace seedvisor::netstack
