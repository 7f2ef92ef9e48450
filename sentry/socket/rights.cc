#include "sentry/socket/rights.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <mutex>

namespace seedvisor::sentry {

namespace {
std::mutex g_mu;
uint64_t g_next = 1;
std::map<uint64_t, Parcel>* g_parked = new std::map<uint64_t, Parcel>;
}  // namespace

Result<int> ParkFiles(std::vector<FileRef> files, const ucred& cred) {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return Errno(errno);
  uint64_t token;
  {
    std::lock_guard<std::mutex> l(g_mu);
    token = g_next++;
    Parcel& parcel = (*g_parked)[token];
    parcel.files = std::move(files);
    parcel.cred = cred;
    parcel.valid = true;
  }
  ssize_t n = write(p[1], &token, sizeof(token));
  close(p[1]);
  if (n != sizeof(token)) {
    close(p[0]);
    std::lock_guard<std::mutex> l(g_mu);
    g_parked->erase(token);
    return Errno(EIO);
  }
  return p[0];
}

Parcel TakeParcel(int host_fd) {
  uint64_t token = 0;
  ssize_t n = read(host_fd, &token, sizeof(token));
  close(host_fd);
  if (n != sizeof(token)) return {};
  std::lock_guard<std::mutex> l(g_mu);
  auto it = g_parked->find(token);
  if (it == g_parked->end()) return {};
  Parcel p = std::move(it->second);
  g_parked->erase(it);
  return p;
}

}  // namespace seedvisor::sentry
