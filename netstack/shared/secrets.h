// The keys behind every value a peer must not predict: TCP initial sequence
// numbers (RFC 6528), ephemeral port choice (RFC 6056 algorithm 3), IPv4
// identification and IPv6 flow labels, and the jitter of TCP's retries.
// They are keyed SipHash-2-4 PRFs.
//
// The code is shared by every fork of a seed; the key material is per
// instance: a sandbox fork copies the seed's keys with the rest of sentry
// memory, so the fork must call Rekey() before its guest runs again, or two
// forks would pick the same ISNs and source ports.
//
//   Secrets s;
//   s.Rekey();                        // from getrandom(2)
//   uint32_t isn = s.IsnOffset(src, sport, dst, dport);
#ifndef SEEDVISOR_NETSTACK_SHARED_SECRETS_H_
#define SEEDVISOR_NETSTACK_SHARED_SECRETS_H_

#include <cstdint>

#include "netstack/shared/wire.h"

namespace seedvisor::netstack {

// SipHash-2-4 of the 64-bit words `m[0..n)` under a 128-bit key.
uint64_t SipHash24(const uint64_t key[2], const uint64_t* m, int n);

class Secrets {
 public:
  // New keys from getrandom(2). Safe to call right after a fork (no
  // allocation, no lock).
  void Rekey();
  // New keys derived from `seed` (tests: reproducible runs).
  void RekeyFrom(uint64_t seed);

  uint32_t IsnOffset(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) const;
  // The offset of a connection's TCP timestamps clock (RFC 7323 5.4, as
  // Linux's secure_tcp_ts_off()): the other half of the ISN's hash.
  uint32_t TsOffset(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) const;
  // RFC 6056 F(local, remote, remote port): where the search for a free
  // ephemeral port toward that peer starts.
  uint32_t PortOffset(const IpAddr& src, const IpAddr& dst, uint16_t dport) const;
  // A starting IPv4 id per destination (the counter adds to it); for
  // IPv6, the flow label of a connection (RFC 6437 3: a hash of the flow).
  uint16_t IpIdBase(Ip4 src, Ip4 dst, uint8_t proto) const;
  uint32_t FlowLabel(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) const;
  // Which member of a SO_REUSEPORT group takes a flow (Linux hashes the
  // four-tuple with a boot-time secret: inet_ehashfn(), udp_ehashfn()).
  uint32_t FlowHash(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport) const;
  // 32 bits for the jitter of a connection's `retry`th retransmission
  // timer: forks of one seed that connect at the same moment must not
  // retry in lockstep (a thundering herd at a peer that dropped their
  // SYNs), and each fork's re-key gives it its own.
  uint32_t RetryJitter(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport,
                       uint32_t retry) const;
  // How many times the keys were drawn (tests, /proc).
  uint64_t generation() const { return generation_; }

 private:
  uint64_t isn_key_[2] = {};
  uint64_t port_key_[2] = {};
  uint64_t ipid_key_[2] = {};
  uint64_t retry_key_[2] = {};
  uint64_t generation_ = 0;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_SECRETS_H_
