// Where a NIC's frames go: the per-instance device. In the sentry this is a
// packet socket on the sandbox's veth (attached after a fork); in tests a
// recorder. WriteFrame is called with the stack's lock held and must not
// call back into the stack; it must not block (drop instead, as a full
// device queue would).
#ifndef SEEDVISOR_NETSTACK_INSTANCE_LINK_ENDPOINT_H_
#define SEEDVISOR_NETSTACK_INSTANCE_LINK_ENDPOINT_H_

#include <cstdint>
#include <string_view>

namespace seedvisor::netstack {

// What a frame leaves to the device: Linux's CHECKSUM_PARTIAL and TSO, as
// a virtio_net_hdr says them (VIRTIO_NET_HDR_F_NEEDS_CSUM, GSO_TCPV4/6).
// Only a link whose TakesOffloads() is true gets frames with them.
struct TxOffload {
  // The transport checksum field holds only the folded pseudo-header sum
  // (as tcp_v4_send_check() leaves it); the device sums from csum_start
  // (the transport header, counted from the frame's first byte) to the end
  // and stores the result at csum_start + csum_offset.
  bool csum_partial = false;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
  // > 0: the frame is one TCP segment with more than gso_size bytes of
  // payload, which the device (or the host stack behind it) cuts into
  // segments of gso_size, fixing sequence numbers, IP ids and checksums
  // (Linux's tcp_gso_segment()). Always with csum_partial.
  uint16_t gso_size = 0;
  bool gso_v6 = false;
  uint16_t hdr_len = 0;  // Ethernet + IP + TCP header bytes
};

class LinkEndpoint {
 public:
  virtual ~LinkEndpoint() = default;
  // One complete Ethernet frame (no FCS), every checksum filled in and at
  // most the MTU.
  virtual void WriteFrame(std::string_view frame) = 0;
  // Whether the device completes transport checksums and takes TCP
  // segments of up to 64 KiB to cut (then TCP sends those, through
  // WriteOffloadedFrame).
  virtual bool TakesOffloads() const { return false; }
  virtual void WriteOffloadedFrame(std::string_view frame, const TxOffload& /*o*/) {
    WriteFrame(frame);
  }
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_INSTANCE_LINK_ENDPOINT_H_
