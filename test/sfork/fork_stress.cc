// fork_stress: many overlapping Fork RPCs of one seed, as seedd makes them
// (issue 9's hung Fork): instance forks, paused forks (replicas) that are
// forked from at once, and destroys, all at the same time. Every Fork must
// answer within --max-fork; a slower or failed one is reported with its
// kind, id and time, and the run fails.
//
//   fork_stress --seed=/run/s1/control.sock --seed-id=s1 --dir=/tmp/x --seconds=40
//
// Driven by sfork_stress_test.sh, which boots and pauses the seed. Children
// are destroyed with SIGKILL of their sandbox process (its anchor takes its
// host processes along), as fri's Destroy does.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "sentry/control/control.pb.h"
#include "shim/ttrpc/client.h"

namespace {

constexpr char kService[] = "seedvisor.control.v1.Control";

struct Options {
  std::string seed, seed_id, dir;
  int seconds = 40;
  int max_fork_s = 15;
  int instance_threads = 3;
  int replica_threads = 1;
  int forks_per_replica = 3;
  // The first this many instance forks live until the end, as seedd's
  // replicas and long calls do: the small pids of the seed's pid namespace
  // (its forks' sentries, anchors, zygotes and stubs) stay taken.
  int keep = 24;
};

// Every Fork's outcome, for the summary.
class Record {
 public:
  void Add(const std::string& kind, absl::Duration d) {
    absl::MutexLock l(&mu_);
    times_[kind].push_back(absl::ToDoubleMilliseconds(d));
  }
  void Fail(std::string what) {
    absl::MutexLock l(&mu_);
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
    failures_.push_back(std::move(what));
  }
  bool failed() {
    absl::MutexLock l(&mu_);
    return !failures_.empty();
  }
  void Print() {
    absl::MutexLock l(&mu_);
    for (auto& [kind, v] : times_) {
      std::sort(v.begin(), v.end());
      auto pct = [&](int p) { return v[std::min(v.size() - 1, v.size() * p / 100)]; };
      std::printf("%-22s n=%5zu p50 %7.2f ms  p99 %8.2f ms  max %8.2f ms\n", kind.c_str(), v.size(),
                  pct(50), pct(99), v.back());
    }
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::vector<double>> times_;
  std::vector<std::string> failures_;
};

class Stress {
 public:
  explicit Stress(Options o) : o_(std::move(o)) {}

  // A Fork of the seed at `address` (id `seed_id`) into `new_id`; its pid,
  // or 0 after a failure (recorded).
  pid_t Fork(const std::string& address, const std::string& seed_id, const std::string& new_id,
             bool paused, const std::string& kind) {
    seedvisor::control::v1::ForkRequest req;
    req.set_container_id(seed_id);
    req.set_new_id(new_id);
    req.set_control_address(SocketOf(new_id));
    req.set_paused(paused);
    req.mutable_stdio()->set_stdin(stdin_path_);
    req.mutable_stdio()->set_stdout("/dev/null");
    req.mutable_stdio()->set_stderr(o_.dir + "/children.err");
    seedvisor::control::v1::ForkResponse resp;
    const absl::Time t0 = absl::Now();
    absl::Status s;
    {
      absl::StatusOr<std::unique_ptr<seedvisor::ttrpc::Client>> c =
          seedvisor::ttrpc::Client::Dial(address);
      s = c.ok() ? (*c)->Call(kService, "Fork", req, &resp, absl::Seconds(o_.max_fork_s))
                 : c.status();
    }
    const absl::Duration took = absl::Now() - t0;
    rec_.Add(kind, took);
    if (!s.ok() || took > absl::Seconds(o_.max_fork_s)) {
      rec_.Fail(absl::StrCat(kind, " fork of \"", seed_id, "\" into \"", new_id, "\" after ",
                             absl::FormatDuration(took), ": ",
                             s.ok() ? "too slow" : std::string(s.message())));
      return 0;
    }
    return resp.pid();
  }

  // SIGKILL of a forked sandbox, waiting until it is gone.
  static void Destroy(pid_t pid) {
    if (pid <= 0) return;
    const int pfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    kill(pid, SIGKILL);
    if (pfd >= 0) {
      pollfd p{pfd, POLLIN, 0};
      poll(&p, 1, 5000);
      close(pfd);
    }
  }

  void InstanceLoop(int t) {
    for (int n = 0; !Over(); ++n) {
      const std::string id = absl::StrCat("i", t, "-", n);
      pid_t pid = Fork(o_.seed, o_.seed_id, id, false, "instance");
      if (pid > 0 && kept_.fetch_add(1) < o_.keep) {
        absl::MutexLock l(&kept_mu_);
        kept_pids_.push_back(pid);
        continue;
      }
      Destroy(pid);
      unlink(SocketOf(id).c_str());
    }
  }

  // A replica (paused fork) that is forked from at once, several times
  // concurrently and while it is still starting, then destroyed.
  void ReplicaLoop(int t) {
    for (int n = 0; !Over(); ++n) {
      const std::string rid = absl::StrCat("r", t, "-", n);
      pid_t replica = Fork(o_.seed, o_.seed_id, rid, true, "replica");
      if (replica > 0) {
        std::vector<std::thread> ts;
        for (int k = 0; k < o_.forks_per_replica; ++k) {
          ts.emplace_back([&, k] {
            const std::string id = absl::StrCat(rid, "-i", k);
            Destroy(Fork(SocketOf(rid), rid, id, false, "instance of replica"));
            unlink(SocketOf(id).c_str());
          });
        }
        for (auto& th : ts) th.join();
      }
      Destroy(replica);
      unlink(SocketOf(rid).c_str());
    }
  }

  int Run() {
    // Every child's stdin: a pipe nobody writes to (its guest blocks reading).
    if (pipe(stdin_pipe_) != 0) return 2;
    // Their stderr (the forked sentries' warnings): one file.
    const int err = open((o_.dir + "/children.err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err < 0) return 2;
    close(err);
    stdin_path_ = absl::StrCat("/proc/", getpid(), "/fd/", stdin_pipe_[0]);
    end_ = absl::Now() + absl::Seconds(o_.seconds);
    std::vector<std::thread> ts;
    for (int t = 0; t < o_.instance_threads; ++t) ts.emplace_back([this, t] { InstanceLoop(t); });
    for (int t = 0; t < o_.replica_threads; ++t) ts.emplace_back([this, t] { ReplicaLoop(t); });
    for (auto& th : ts) th.join();
    rec_.Print();
    absl::MutexLock l(&kept_mu_);
    if (rec_.failed()) {
      // Left for the caller, which looks at the seed first: a Fork stuck on
      // one of them ends when it dies.
      FILE* f = fopen((o_.dir + "/kept.pids").c_str(), "w");
      for (pid_t pid : kept_pids_) {
        if (f != nullptr) fprintf(f, "%d\n", pid);
      }
      if (f != nullptr) fclose(f);
      return 1;
    }
    for (pid_t pid : kept_pids_) Destroy(pid);
    std::printf("fork_stress: ok\n");
    return 0;
  }

 private:
  bool Over() { return absl::Now() >= end_ || rec_.failed(); }
  std::string SocketOf(const std::string& id) const { return o_.dir + "/" + id + ".sock"; }

  const Options o_;
  Record rec_;
  absl::Time end_;
  std::atomic<int> kept_{0};
  absl::Mutex kept_mu_;
  std::vector<pid_t> kept_pids_ ABSL_GUARDED_BY(kept_mu_);
  int stdin_pipe_[2] = {-1, -1};
  std::string stdin_path_;
};

bool ParseInt(const std::string& v, int* out) { return absl::SimpleAtoi(v, out) && *out >= 0; }

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    const std::string key = a.substr(0, eq), val = eq == std::string::npos ? "" : a.substr(eq + 1);
    bool ok = true;
    if (key == "--seed") o.seed = val;
    else if (key == "--seed-id") o.seed_id = val;
    else if (key == "--dir") o.dir = val;
    else if (key == "--seconds") ok = ParseInt(val, &o.seconds);
    else if (key == "--max-fork") ok = ParseInt(val, &o.max_fork_s);
    else if (key == "--instance-threads") ok = ParseInt(val, &o.instance_threads);
    else if (key == "--replica-threads") ok = ParseInt(val, &o.replica_threads);
    else if (key == "--forks-per-replica") ok = ParseInt(val, &o.forks_per_replica);
    else if (key == "--keep") ok = ParseInt(val, &o.keep);
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "fork_stress: bad argument \"%s\"\n", a.c_str());
      return 2;
    }
  }
  if (o.seed.empty() || o.seed_id.empty() || o.dir.empty()) {
    std::fprintf(stderr, "usage: fork_stress --seed=ADDRESS --seed-id=ID --dir=DIR [--seconds=40] "
                         "[--max-fork=15] [--instance-threads=3] [--replica-threads=1] "
                         "[--forks-per-replica=3] [--keep=24]\n");
    return 2;
  }
  return Stress(std::move(o)).Run();
}
