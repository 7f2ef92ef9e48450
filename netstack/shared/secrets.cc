#include "netstack/shared/secrets.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>

namespace seedvisor::netstack {
namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline void SipRound(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1; v1 = Rotl(v1, 13); v1 ^= v0; v0 = Rotl(v0, 32);
  v2 += v3; v3 = Rotl(v3, 16); v3 ^= v2;
  v0 += v3; v3 = Rotl(v3, 21); v3 ^= v0;
  v2 += v1; v1 = Rotl(v1, 17); v1 ^= v2; v2 = Rotl(v2, 32);
}

uint64_t SplitMix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t SipHash24(const uint64_t key[2], const uint64_t* m, int n) {
  uint64_t v0 = 0x736f6d6570736575ull ^ key[0];
  uint64_t v1 = 0x646f72616e646f6dull ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ull ^ key[0];
  uint64_t v3 = 0x7465646279746573ull ^ key[1];
  for (int i = 0; i < n; ++i) {
    v3 ^= m[i];
    SipRound(v0, v1, v2, v3);
    SipRound(v0, v1, v2, v3);
    v0 ^= m[i];
  }
  uint64_t b = uint64_t(n * 8) << 56;
  v3 ^= b;
  SipRound(v0, v1, v2, v3);
  SipRound(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) SipRound(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

void Secrets::Rekey() {
  uint64_t buf[8];
  size_t got = 0;
  auto* p = reinterpret_cast<char*>(buf);  // SAFETY: filling a local array's bytes.
  while (got < sizeof buf) {
    ssize_t n = getrandom(p + got, sizeof buf - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      abort();  // getrandom(2) without GRND_NONBLOCK only fails on bad arguments.
    }
    got += size_t(n);
  }
  isn_key_[0] = buf[0]; isn_key_[1] = buf[1];
  port_key_[0] = buf[2]; port_key_[1] = buf[3];
  ipid_key_[0] = buf[4]; ipid_key_[1] = buf[5];
  retry_key_[0] = buf[6]; retry_key_[1] = buf[7];
  ++generation_;
}

void Secrets::RekeyFrom(uint64_t seed) {
  isn_key_[0] = SplitMix(seed); isn_key_[1] = SplitMix(seed);
  port_key_[0] = SplitMix(seed); port_key_[1] = SplitMix(seed);
  ipid_key_[0] = SplitMix(seed); ipid_key_[1] = SplitMix(seed);
  retry_key_[0] = SplitMix(seed); retry_key_[1] = SplitMix(seed);
  ++generation_;
}

namespace {

// The flow (both addresses, both ports) as SipHash message words.
void FlowWords(const IpAddr& src, uint16_t sport, const IpAddr& dst, uint16_t dport,
               uint64_t m[5]) {
  for (int w = 0; w < 4; ++w) {
    const IpAddr& a = w < 2 ? src : dst;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | a.b[(w % 2) * 8 + i];
    m[w] = v;
  }
  m[4] = uint64_t(sport) << 16 | dport;
}

}  // namespace

uint32_t Secrets::IsnOffset(const IpAddr& src, uint16_t sport, const IpAddr& dst,
                            uint16_t dport) const {
  uint64_t m[5];
  FlowWords(src, sport, dst, dport, m);
  return uint32_t(SipHash24(isn_key_, m, 5));
}

uint32_t Secrets::TsOffset(const IpAddr& src, uint16_t sport, const IpAddr& dst,
                           uint16_t dport) const {
  uint64_t m[5];
  FlowWords(src, sport, dst, dport, m);
  return uint32_t(SipHash24(isn_key_, m, 5) >> 32);
}

uint32_t Secrets::PortOffset(const IpAddr& src, const IpAddr& dst, uint16_t dport) const {
  uint64_t m[5];
  FlowWords(src, 0, dst, dport, m);
  return uint32_t(SipHash24(port_key_, m, 5));
}

uint32_t Secrets::FlowLabel(const IpAddr& src, uint16_t sport, const IpAddr& dst,
                            uint16_t dport) const {
  uint64_t m[5];
  FlowWords(src, sport, dst, dport, m);
  return uint32_t(SipHash24(ipid_key_, m, 5)) & 0xfffff;
}

uint32_t Secrets::FlowHash(const IpAddr& src, uint16_t sport, const IpAddr& dst,
                           uint16_t dport) const {
  uint64_t m[5];
  FlowWords(src, sport, dst, dport, m);
  return uint32_t(SipHash24(ipid_key_, m, 5) >> 32);
}

uint32_t Secrets::RetryJitter(const IpAddr& src, uint16_t sport, const IpAddr& dst,
                              uint16_t dport, uint32_t retry) const {
  uint64_t m[6];
  FlowWords(src, sport, dst, dport, m);
  m[5] = retry;
  return uint32_t(SipHash24(retry_key_, m, 6));
}

uint16_t Secrets::IpIdBase(Ip4 src, Ip4 dst, uint8_t proto) const {
  uint64_t m[2] = {uint64_t(src.v) << 32 | dst.v, proto};
  return uint16_t(SipHash24(ipid_key_, m, 2));
}

}  // namespace seedvisor::netstack
