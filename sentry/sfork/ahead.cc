// Forks made ahead (sfork.h: StartForkAhead): the seed host-forks its
// sentry while it waits, and the child takes steps 1-3 then waits for the
// request a Fork hands it (HandOffToForkAhead).
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sentry/fs/host/stdio_file.h"
#include "sentry/sfork/fork_child.h"
#include "sentry/sfork/fork_diagnosis.h"
#include "sentry/sfork/sfork.h"
#include "sentry/sfork/spares.h"

namespace seedvisor::sentry {

// sentry/kernel/kernel_quiesce.cc (StartFork refuses, and says why).
bool ParkedWorkStillRunning();

namespace {

// The child says it is ready (or why not) in one message on its channel;
// a request comes as one message (AheadRequest, the payload after it) with
// the fds (the stdio's three first) as SCM_RIGHTS; the report goes back as
// one message, as a fork made now writes it on its pipe.
struct AheadReady {
  int32_t ok = 0;
  char message[512] = {};
};
struct AheadRequest {
  int32_t test_stall_child = 0;
  uint32_t payload_size = 0;
};

// The fork StartForkAhead started, until AwaitForkAhead: under the fork
// lock, and the deadline of its word.
std::optional<Spare> starting_ahead_;
int64_t starting_deadline_ns_ = 0;
// How long AwaitForkAhead waits for it to say it is ready.
constexpr absl::Duration kAheadReadyDeadline = absl::Seconds(10);

// Receives a request on `chan` into `req`, `payload` and `fds`: false when
// the seed let go of us (end of file) or sent something else.
bool ReceiveAheadRequest(int chan, AheadRequest* req, std::string* payload,
                         std::vector<int>* fds) {
  std::string buf(sizeof(AheadRequest) + kMaxAheadPayload, '\0');
  iovec iov = {.iov_base = buf.data(), .iov_len = buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (3 + kMaxAheadFds))];
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(chan, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds->push_back(fd);
    }
  }
  if (static_cast<size_t>(n) < sizeof(AheadRequest) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
      fds->size() < 3) {
    return false;
  }
  std::memcpy(req, buf.data(), sizeof(*req));
  if (req->payload_size != static_cast<size_t>(n) - sizeof(AheadRequest)) return false;
  payload->assign(buf.data() + sizeof(AheadRequest), req->payload_size);
  return true;
}

// The child of StartForkAhead: steps 1-3 with the spare, then its request
// on `chan`, then step 4.
[[noreturn]] void AheadChildMain(Kernel& k, const std::shared_ptr<ThreadGroup>& init, int chan,
                                 const Spare& spare, ForkTrace* trace, const AheadChild& child) {
  Report r;
  SetForkChildTrace(trace);
  LetGoOfTheSeeds(spare);
  std::vector<pid_t> pids = {getpid()};
  ForkFileContext fctx;  // no stdio yet (ForkFileContext::stdio_later)
  StdioSlots(init, &fctx);
  absl::Status s = AdoptKernel(k, fctx, spare.anchor, &pids, r);
  if (s.ok() && child.prepare) child.prepare();
  AheadReady ready;
  ready.ok = s.ok() ? 1 : 0;
  std::string msg(s.message());
  std::strncpy(ready.message, msg.c_str(), sizeof(ready.message) - 1);
  ForkChildStep("saying it is ready (made ahead)");
  const bool told = write(chan, &ready, sizeof(ready)) == static_cast<ssize_t>(sizeof(ready));
  if (!s.ok() || !told) {
    kill(-spare.anchor, SIGKILL);
    _exit(1);
  }
  ForkChildStep("waiting for its request (made ahead)");
  AheadRequest req;
  std::string payload;
  std::vector<int> fds;
  if (!ReceiveAheadRequest(chan, &req, &payload, &fds)) {
    // The seed let go of us, or is gone: so are we, and our group (our
    // anchor takes it along once our life line closes, unless it died
    // first).
    kill(-spare.anchor, SIGKILL);
    _exit(0);
  }
  const int64_t got = MonotonicNs();
  for (ForkPhase p : {ForkPhase::kHandoff, ForkPhase::kSentryFork, ForkPhase::kReinit,
                      ForkPhase::kZygote, ForkPhase::kAddressSpaces}) {
    r.phase_end[static_cast<int>(p)] = got;
  }
  ForkChildStep("adopting its stdio");
  ForkFileContext io;
  for (int i = 0; i < 3; ++i) io.stdio[i] = fds[i];
  io.stdio_slot = fctx.stdio_slot;
  for (auto& f : fctx.stdio_later) {
    if (s.ok()) s = f->AdoptInForkChild(io);
  }
  for (auto& fn : fctx.after_stdio) {
    if (s.ok()) s = fn();
  }
  ReplaceControllingTerminalInForkChild(io.stdio);
  EndPhase(r, ForkPhase::kFiles);
  std::function<void()> main;
  auto setup = [&](const std::vector<pid_t>& ps, pid_t* report) -> absl::Status {
    absl::Status st = child.setup(payload, &fds, ps, report, &main);
    // The stdio's three are dup'ed where they are used by now; the others
    // the setup left here it has no use for.
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] > 2) close(fds[i]);
    }
    return st;
  };
  FinishInChild(k, std::move(s), req.test_stall_child != 0, chan, r, pids, spare.anchor, trace,
                setup, [&] { main(); });
}

}  // namespace

// In the seed: hands `opts`' request to the fork made ahead `spare`.
// False if it is gone (or the request could not be sent).
bool HandOffToForkAhead(const Spare& spare, const ForkOptions& opts) {
  if (opts.progress) opts.progress("handing the request to a fork made ahead");
  AheadRequest req;
  req.test_stall_child = opts.test_stall_child ? 1 : 0;
  req.payload_size = static_cast<uint32_t>(opts.ahead_payload.size());
  std::string buf(reinterpret_cast<const char*>(&req), sizeof(req));
  buf += opts.ahead_payload;
  std::vector<int> fds(opts.stdio, opts.stdio + 3);
  fds.insert(fds.end(), opts.ahead_fds.begin(), opts.ahead_fds.end());
  iovec iov = {.iov_base = buf.data(), .iov_len = buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (3 + kMaxAheadFds))] = {};
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  ssize_t n;
  do {
    n = sendmsg(spare.channel, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(buf.size());
}

absl::StatusOr<bool> StartForkAhead(Kernel& k, size_t want, uint64_t version,
                                    std::shared_ptr<ThreadGroup> init, const AheadChild& child,
                                    const ForkProgress& progress) {
  if (starting_ahead_.has_value()) return absl::InternalError("a fork made ahead is starting");
  {
    absl::MutexLock l(&k.mu());
    if (!k.park_requested() || !k.AllParked()) return true;  // resumed meanwhile
    if (ParkedWorkStillRunning()) return true;  // StartFork refuses, and says why
    // A traced task: StartFork refuses the fork, and says why.
    for (const std::shared_ptr<Task>& t : k.Tasks()) {
      if (t->ptrace().tracer != nullptr) return true;
    }
  }
  std::optional<Spare> taken = TakeSpareToForkAhead(k, want, version);
  if (!taken) return true;
  Spare spare = std::move(*taken);
  int chan[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, chan) != 0) {
    const int err = errno;
    PutBackSpare(std::move(spare));
    return HostFailure("socketpair", err);
  }
  ForkTrace* trace = ForkTrace::Map();
  if (progress) progress("host-forking the sentry ahead of a request");
  const pid_t pid = ForkHolding(k.mu());
  if (pid == 0) {
    close(chan[0]);
    AheadChildMain(k, init, chan[1], spare, trace, child);
  }
  close(chan[1]);
  close(spare.life_fd);  // the child's alone, as in StartFork
  spare.life_fd = -1;
  if (pid < 0) {
    const int err = errno;
    close(chan[0]);
    ForkTrace::Unmap(trace);
    LetGoOfSpare(k, spare, false);
    return HostFailure("forking the sentry ahead", err);
  }
  spare.sentry = pid;
  spare.channel = chan[0];
  spare.trace = trace;
  spare.version = version;
  starting_ahead_ = std::move(spare);
  starting_deadline_ns_ = MonotonicNs() + absl::ToInt64Nanoseconds(kAheadReadyDeadline);
  return false;
}

void LetGoOfStartingAheadInForkChild() {
  if (!starting_ahead_.has_value()) return;
  // Held here, the seed's end of its channel would keep it waiting after
  // the seed is gone (it ends at that end of file).
  close(starting_ahead_->channel);
  ForkTrace::Unmap(starting_ahead_->trace);
  starting_ahead_.reset();
}

AheadWait StartingForkAhead() {
  if (!starting_ahead_.has_value()) return {};
  return {.channel = starting_ahead_->channel, .deadline_ns = starting_deadline_ns_};
}

void WaitForkAheadReady(const AheadWait& wait) {
  if (wait.channel >= 0) AwaitReport(wait.channel, wait.deadline_ns);
}

absl::Status AwaitForkAhead(Kernel& k) {
  if (!starting_ahead_.has_value()) return absl::OkStatus();
  Spare spare = std::move(*starting_ahead_);
  starting_ahead_.reset();
  AheadReady ready;
  ssize_t n = -1;
  if (AwaitReport(spare.channel, starting_deadline_ns_)) {
    do {
      n = read(spare.channel, &ready, sizeof(ready));
    } while (n < 0 && errno == EINTR);
  }
  // It may have counted what we map MAP_SHARED shared (FinishFork).
  KeepSharedMappings(k);
  if (n == static_cast<ssize_t>(sizeof(ready)) && ready.ok) {
    AddForkAhead(std::move(spare));
    return absl::OkStatus();
  }
  LetGoOfSpare(k, spare, false);
  if (n != static_cast<ssize_t>(sizeof(ready))) {
    return absl::InternalError("the fork made ahead died or hung before it was ready");
  }
  ready.message[sizeof(ready.message) - 1] = '\0';
  return absl::FailedPreconditionError(absl::StrCat("a fork made ahead: ", ready.message));
}

size_t ForksAheadReady() { return CountForksAhead(); }

}  // namespace seedvisor::sentry
