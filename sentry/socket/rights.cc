#include "sentry/socket/rights.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>

namespace seedvisor::sentry {

namespace {
// Parcels by the inode number of the pipe that names them: unique while the
// pipe lives, and the pipe lives while its fd is in flight.
std::mutex g_mu;
std::map<uint64_t, Parcel>* g_parked = new std::map<uint64_t, Parcel>;

Result<uint64_t> Token(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Errno(errno);
  return static_cast<uint64_t>(st.st_ino);
}
}  // namespace

Result<int> ParkFiles(std::vector<FileRef> files, const ucred& cred, std::string addr) {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return Errno(errno);
  close(p[1]);
  auto token = Token(p[0]);
  if (!token.ok()) {
    close(p[0]);
    return token.error();
  }
  std::lock_guard<std::mutex> l(g_mu);
  // A parcel whose message was never received may still sit under a reused
  // inode number: the new one replaces it.
  Parcel& parcel = (*g_parked)[*token];
  parcel.files = std::move(files);
  parcel.cred = cred;
  parcel.addr = std::move(addr);
  parcel.valid = true;
  return p[0];
}

Parcel TakeParcel(int host_fd, bool peek) {
  auto token = Token(host_fd);
  close(host_fd);
  if (!token.ok()) return {};
  std::lock_guard<std::mutex> l(g_mu);
  auto it = g_parked->find(*token);
  if (it == g_parked->end()) return {};
  if (peek) return it->second;
  Parcel p = std::move(it->second);
  g_parked->erase(it);
  return p;
}

}  // namespace seedvisor::sentry
