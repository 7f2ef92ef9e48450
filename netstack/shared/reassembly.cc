#include "netstack/shared/reassembly.h"

namespace seedvisor::netstack {

Reassembler::AddResult Reassembler::Add(const Ip4Header& h, std::string_view payload,
                                        int64_t now_ns) {
  AddResult res;
  uint32_t off = h.frag_offset();
  uint32_t end = off + uint32_t(payload.size());
  // Every fragment but the last carries a multiple of 8 bytes.
  if ((h.more_fragments() && payload.size() % 8 != 0) || (h.more_fragments() && payload.empty())) {
    res.status = kBadLength;
    return res;
  }
  if (end + kIp4MinHeaderLen > 65535) {
    res.status = kTooBig;
    return res;
  }
  Key key{h.src.v, h.dst.v, h.proto, h.id};
  auto it = parts_.find(key);
  if (it == parts_.end()) {
    if (parts_.size() >= kMaxDatagrams || bytes_ + payload.size() > kMaxBytes) {
      res.status = kNoRoom;
      return res;
    }
    it = parts_.emplace(key, Partial{}).first;
    it->second.first_ns = now_ns;
  } else if (bytes_ + payload.size() > kMaxBytes) {
    bytes_ -= it->second.bytes;
    parts_.erase(it);
    res.status = kNoRoom;
    return res;
  }
  Partial& p = it->second;
  auto drop = [&](Status s) {
    bytes_ -= p.bytes;
    parts_.erase(it);
    res.status = s;
    return res;
  };
  if (!h.more_fragments()) {
    if (p.have_last && p.total != end) return drop(kOverlap);
    p.have_last = true;
    p.total = end;
  }
  if (p.have_last && end > p.total) return drop(kOverlap);
  // Overlap with a neighbour (an exact duplicate is an overlap too: RFC 5722).
  auto next = p.frags.lower_bound(off);
  if (next != p.frags.end() && next->first < end) return drop(kOverlap);
  if (next != p.frags.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.size() > off) return drop(kOverlap);
  }
  p.frags.emplace(off, std::string(payload));
  p.bytes += payload.size();
  bytes_ += payload.size();
  if (!p.have_last) return res;
  uint32_t at = 0;
  for (const auto& [o, data] : p.frags) {
    if (o != at) return res;  // a hole
    at += uint32_t(data.size());
  }
  if (at != p.total) return res;
  res.datagram.reserve(p.total);
  for (const auto& [o, data] : p.frags) res.datagram += data;
  bytes_ -= p.bytes;
  parts_.erase(it);
  res.status = kComplete;
  return res;
}

size_t Reassembler::Expire(int64_t now_ns) {
  size_t n = 0;
  for (auto it = parts_.begin(); it != parts_.end();) {
    if (now_ns - it->second.first_ns >= kTimeoutNs) {
      bytes_ -= it->second.bytes;
      it = parts_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

int64_t Reassembler::NextExpiry() const {
  int64_t best = -1;
  for (const auto& [k, p] : parts_) {
    int64_t e = p.first_ns + kTimeoutNs;
    if (best < 0 || e < best) best = e;
  }
  return best;
}

}  // namespace seedvisor::netstack
