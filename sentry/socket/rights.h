// Carrying sentry files (SCM_RIGHTS) and the sender's credentials through a
// host unix socket.
//
// The guest's files may have no host fd at all (tmpfs, overlay, /proc), so
// they cannot travel as host fds. Instead the sender parks them here under a
// token and sends, in the same host message, one host fd: the read end of a
// pipe holding the token. The receiver reads the token from that fd and
// takes the parked files. The host kernel keeps the fd with the right byte
// of the stream, so ordering and message boundaries are the host's.
//
//   SV_ASSIGN_OR_RETURN(int hfd, ParkFiles({file}, cred));   // send hfd
//   Parcel p = TakeParcel(received_hfd);                      // closes it
#ifndef SEEDVISOR_SENTRY_SOCKET_RIGHTS_H_
#define SEEDVISOR_SENTRY_SOCKET_RIGHTS_H_

#include <sys/socket.h>

#include <vector>

#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

struct Parcel {
  std::vector<FileRef> files;
  ucred cred{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
  bool valid = false;
};

// A host fd to send; the parcel waits until TakeParcel. A parcel whose
// message is never received stays parked (until the sentry exits).
Result<int> ParkFiles(std::vector<FileRef> files, const ucred& cred);
// Takes the parcel a received host fd names, and closes that fd.
Parcel TakeParcel(int host_fd);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_RIGHTS_H_
