// Carrying sentry files (SCM_RIGHTS) and the sender's credentials through a
// host unix socket.
//
// The guest's files may have no host fd at all (tmpfs, overlay, /proc), so
// they cannot travel as host fds. Instead the sender parks them here and
// sends, in the same host message, one host fd: the read end of a fresh
// pipe, whose inode number names the parcel. The receiver looks the parcel
// up by the received fd's inode and takes the files. The host kernel keeps
// the fd with the right byte of the stream, so ordering and message
// boundaries are the host's. A parcel also carries the sender's credentials
// and, for datagrams from a bound socket, its address.
//
//   SV_ASSIGN_OR_RETURN(int hfd, ParkFiles({file}, cred));   // send hfd
//   Parcel p = TakeParcel(received_hfd);                      // closes it
#ifndef SEEDVISOR_SENTRY_SOCKET_RIGHTS_H_
#define SEEDVISOR_SENTRY_SOCKET_RIGHTS_H_

#include <sys/socket.h>

#include <string>
#include <vector>

#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

struct Parcel {
  std::vector<FileRef> files;
  std::string addr;  // the sender's address (datagrams from a bound socket)
  ucred cred{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
  bool valid = false;
};

// A host fd to send; the parcel waits until TakeParcel. A parcel whose
// message is never received stays parked (until the sentry exits).
Result<int> ParkFiles(std::vector<FileRef> files, const ucred& cred, std::string addr = "");
// Takes the parcel a received host fd names, and closes that fd. With
// `peek` (MSG_PEEK) the parcel stays for the real receive: a copy comes back.
Parcel TakeParcel(int host_fd, bool peek = false);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SOCKET_RIGHTS_H_
