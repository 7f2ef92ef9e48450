// IPv4 fragment reassembly (RFC 791, with RFC 5722's rule carried over to
// IPv4: an overlapping fragment drops the whole datagram, since overlaps
// are how filters are evaded). Datagrams are keyed by (src, dst, proto, id),
// limited in number and size (Linux's ipfrag_high_thresh in spirit), and
// dropped 30 s after their first fragment (ipfrag_time).
//
//   Reassembler r;
//   auto res = r.Add(hdr, payload, now);
//   if (res.status == Reassembler::kComplete) Deliver(res.datagram);
#ifndef SEEDVISOR_NETSTACK_SHARED_REASSEMBLY_H_
#define SEEDVISOR_NETSTACK_SHARED_REASSEMBLY_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

#include "netstack/shared/wire.h"

namespace seedvisor::netstack {

class Reassembler {
 public:
  static constexpr size_t kMaxDatagrams = 64;
  static constexpr size_t kMaxBytes = 4 << 20;
  static constexpr int64_t kTimeoutNs = 30'000'000'000;

  enum Status { kIncomplete, kComplete, kOverlap, kTooBig, kNoRoom, kBadLength };
  struct AddResult {
    Status status = kIncomplete;
    std::string datagram;  // the reassembled payload, on kComplete
  };
  AddResult Add(const Ip4Header& h, std::string_view payload, int64_t now_ns);
  // Drops datagrams older than kTimeoutNs; returns how many.
  size_t Expire(int64_t now_ns);
  size_t pending() const { return parts_.size(); }
  // The earliest expiry, -1 if nothing is pending.
  int64_t NextExpiry() const;

 private:
  using Key = std::tuple<uint32_t, uint32_t, uint8_t, uint16_t>;
  struct Partial {
    int64_t first_ns = 0;
    std::map<uint32_t, std::string> frags;  // offset -> bytes
    uint32_t total = 0;                     // known once the last fragment came
    bool have_last = false;
    size_t bytes = 0;
  };
  std::map<Key, Partial> parts_;
  size_t bytes_ = 0;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_REASSEMBLY_H_
