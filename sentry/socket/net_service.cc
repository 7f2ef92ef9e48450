#include "sentry/socket/net_service.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

namespace seedvisor::sentry {
namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

NetService::NetService() {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  netstack::StackOptions o;
  o.timer_kick = [this] { Kick(); };
  stack_ = std::make_unique<netstack::Stack>(std::move(o));
}

NetService::~NetService() {
  Park();
  // Connections the stack still holds go with it; nothing else runs now.
  stack_.reset();
  if (int fd = wake_fd_.exchange(-1); fd >= 0) close(fd);
}

void NetService::Kick() {
  int fd = wake_fd_.load(std::memory_order_relaxed);
  if (fd < 0) return;
  uint64_t one = 1;
  // A full counter is already a pending wakeup.
  ssize_t n = write(fd, &one, sizeof one);
  (void)n;
}

void NetService::Start() {
  std::lock_guard l(mu_);
  if (running_ || parked_ || wake_fd_ < 0) return;
  stop_ = false;
  running_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void NetService::Park() {
  std::unique_lock l(mu_);
  parked_ = true;
  if (!running_) return;
  stop_ = true;
  Kick();
  std::thread t = std::move(thread_);
  running_ = false;
  l.unlock();
  t.join();
}

void NetService::Unpark() {
  {
    std::lock_guard l(mu_);
    parked_ = false;
  }
  Start();
}

void NetService::ResetInForkChild() {
  // The seed's eventfd is shared with the seed: a kick here would wake the
  // seed's loop. Close our copy and make our own.
  int old = wake_fd_.exchange(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (old >= 0) close(old);
  stack_->RekeyAfterFork();
}

void NetService::Loop() {
  while (!stop_.load()) {
    int64_t next = stack_->NextTimerDeadline();
    int timeout_ms = -1;
    if (next >= 0) {
      int64_t wait = next - NowNs();
      timeout_ms = wait <= 0 ? 0 : int((wait + 999'999) / 1'000'000);
    }
    pollfd p{wake_fd_.load(), POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r > 0 && (p.revents & POLLIN)) {
      uint64_t v;
      ssize_t n = read(p.fd, &v, sizeof v);
      (void)n;
    }
    if (stop_.load()) break;
    stack_->Advance();
  }
}

}  // namespace seedvisor::sentry
