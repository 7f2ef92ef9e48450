#include "sentry/kernel/task.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <cstring>

#include "absl/strings/str_cat.h"

#include "sentry/kernel/kernel.h"
#include "sentry/vfs/fs_context.h"

namespace seedvisor::sentry {

Task::Task(Kernel& kernel, int tid, std::shared_ptr<ThreadGroup> tg)
    : kernel_(kernel), tid_(tid), tg_(std::move(tg)) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  start_time_ns_ = now.tv_sec * 1000000000LL + now.tv_nsec;
}

Task::~Task() {
  if (wake_fd_ >= 0) close(wake_fd_);
  // A task that never ran its exit (its start failed) still used them.
  if (fds_) fds_->DropUser();
  if (fs_) fs_->DropUser();
}

Result<std::vector<std::string>> Task::CopyInStringArray(UserAddr addr) const {
  std::vector<std::string> out;
  if (addr.IsNull()) return out;
  size_t total = 0;
  for (uint64_t i = 0;; ++i) {
    uint64_t ptr;
    SV_TRY(CopyInObj(addr + i * 8, &ptr));
    if (ptr == 0) break;
    SV_ASSIGN_OR_RETURN(std::string s, CopyInString(UserAddr(ptr), 128 * 1024));
    total += s.size() + 1 + 8;
    if (total > 2 * 1024 * 1024) return Errno(E2BIG);  // ARG_MAX-like bound
    out.push_back(std::move(s));
  }
  return out;
}

bool Task::SignalPending() const {
  if (kernel_.park_requested()) return true;
  absl::MutexLock l(&kernel_.mu());
  if (tg_->group_exiting) return true;
  SigSet blocked = signal_mask_;
  return ((pending_.Set() | tg_->shared_pending.Set()) & ~blocked) != 0 || GroupStopPending() ||
         ptrace_.trap_pending;
}

bool Task::FatalSignalPending() const {
  absl::MutexLock l(&kernel_.mu());
  return tg_->group_exiting;
}

bool Task::GroupStopPending() const {
  return tg_->stopped && (ptrace_.tracer == nullptr || ptrace_.group_stop_epoch != tg_->stop_epoch);
}

void Task::WaitForWake() {
  pollfd fd = {wake_fd_, POLLIN, 0};
  blocked_ = true;
  int n = poll(&fd, 1, -1);
  blocked_ = false;
  if (n > 0 && (fd.revents & POLLIN)) {
    uint64_t v;
    (void)!read(wake_fd_, &v, sizeof(v));
  }
}

bool Task::ParkInterrupted() const {
  if (!kernel_.park_requested()) return false;
  absl::MutexLock l(&kernel_.mu());
  if (tg_->group_exiting || GroupStopPending() || ptrace_.trap_pending) return false;
  return ((pending_.Set() | tg_->shared_pending.Set()) & ~signal_mask_) == 0;
}

Status Task::BlockOnFd(int host_fd, short events, const timespec* deadline) {
  for (;;) {
    if (SignalPending()) return Errno(kERESTARTSYS);
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {host_fd, events, 0}};
    if (deadline != nullptr) {
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t left_ns = (deadline->tv_sec - now.tv_sec) * 1000000000LL +
                        (deadline->tv_nsec - now.tv_nsec);
      if (left_ns <= 0) return Errno(ETIMEDOUT);
      timespec ts{static_cast<time_t>(left_ns / 1000000000LL),
                  static_cast<long>(left_ns % 1000000000LL)};
      blocked_ = true;
      int n = ppoll(fds, host_fd >= 0 ? 2 : 1, &ts, nullptr);
      blocked_ = false;
      if (n == 0) return Errno(ETIMEDOUT);
    } else {
      blocked_ = true;
      int n = poll(fds, host_fd >= 0 ? 2 : 1, -1);
      blocked_ = false;
      if (n < 0 && errno != EINTR) return Errno(errno);
    }
    if (fds[0].revents & POLLIN) {
      // One read takes the whole counter of an eventfd.
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof(v));
      // Woken by Notify(): let the caller re-check its condition.
      if (SignalPending()) return Errno(kERESTARTSYS);
      return {};
    }
    if (host_fd >= 0 && fds[1].revents != 0) return {};
  }
}

absl::Status Task::AdoptInForkChild(platform::ThreadHandle thread) {
  if (ctx_ != nullptr) {
    // The FP state, read from the seed's frame (still mapped here), goes
    // with the task: Run() loads it into the new context.
    if (!fp_state_saved()) {
      if (Status s = SaveFpState(); !s.ok()) {
        return absl::InternalError(absl::StrCat("task ", tid_, ": reading its FP state failed"));
      }
    }
    // The seed's context: its destructor would tell the seed's stub thread
    // to exit. Leak it (a few words) rather than touch it.
    (void)ctx_.release();
  }
  fork_thread_ = thread;
  // The seed's task was parked; ours is not until its new host thread gets
  // to ParkTask. Kept true, it made AllParked() claim a paused fork was a
  // seed while its threads still attached, and a Fork of it then found
  // "task 1 has no address space yet" or copied threads mid-start.
  parked_ = false;
  park_work_ = nullptr;
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  close(wake_fd_);  // ours is the seed's: Notify() must not wake its tasks
  wake_fd_ = fd;
  return absl::OkStatus();
}

void Task::Notify() {
  uint64_t one = 1;
  ssize_t r = write(wake_fd_, &one, sizeof(one));
  (void)r;
}

void Task::Interrupt() {
  Notify();
  if (in_guest_.load() && ctx_ != nullptr) ctx_->Interrupt();
}

int64_t Task::ProcessCpuNs() const {
  int64_t live = mm_ ? mm_->address_space().CpuTimeNs() : 0;
  absl::MutexLock l(&kernel_.mu());
  return tg_->cpu_ns + live;
}

int64_t Task::ThreadCpuNsLocked() const { return ctx_ ? ctx_->CpuTimeNs() : 0; }

namespace {
int64_t ClockNs(clockid_t c) {
  timespec ts;
  if (clock_gettime(c, &ts) != 0) return -1;  // the thread has ended
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
}  // namespace

void Task::NoteHostThread() {
  clockid_t c;
  if (pthread_getcpuclockid(pthread_self(), &c) != 0) return;
  host_clock_ = c;
  host_clock_base_ = std::max<int64_t>(0, ClockNs(c));
  host_clock_set_.store(true, std::memory_order_release);
}

int64_t Task::SentryCpuNs() const {
  if (!host_clock_set_.load(std::memory_order_acquire)) return 0;
  const int64_t now = ClockNs(host_clock_);
  return now > host_clock_base_ ? now - host_clock_base_ : 0;
}

int64_t Task::ProcessSentryCpuNsLocked() const {
  int64_t ns = tg_->sys_ns;
  for (const Task* t : tg_->tasks) ns += t->SentryCpuNs();
  return ns;
}

int64_t Task::OwnThreadCpuNs() {
  const int64_t ns = ctx_ ? ctx_->OwnCpuClockNs(/*whole_process=*/false) : -1;
  return ns >= 0 ? ns : ThreadCpuNs();
}

int64_t Task::OwnProcessCpuNs() {
  // The context's host process is the address space's (stub) process.
  const int64_t live = ctx_ && mm_ ? ctx_->OwnCpuClockNs(/*whole_process=*/true) : -1;
  if (live < 0) return ProcessCpuNs();
  absl::MutexLock l(&kernel_.mu());
  return tg_->cpu_ns + live;
}

int64_t Task::ProcessCpuNsLocked() const {
  return tg_->cpu_ns + (mm_ ? mm_->address_space().CpuTimeNs() : 0);
}

int64_t Task::ChildrenCpuNs() const {
  absl::MutexLock l(&kernel_.mu());
  return tg_->children_cpu_ns;
}

std::shared_ptr<FdTable> Task::shared_fds() const {
  absl::MutexLock l(&fs_mu_);
  return fds_;
}

std::shared_ptr<FsContext> Task::shared_fs() const {
  absl::MutexLock l(&fs_mu_);
  return fs_;
}

bool Task::fds_shared() const { return fds_->users() > 1; }

bool Task::fs_shared() const { return fs_->users() > 1; }

void Task::set_fds(std::shared_ptr<FdTable> fds) {
  if (fds) fds->AddUser();
  {
    absl::MutexLock l(&fs_mu_);
    fds_.swap(fds);
  }
  if (fds) fds->DropUser();
  fds.reset();  // the old table, outside the lock
}

void Task::set_fs(std::shared_ptr<FsContext> fs) {
  if (fs) fs->AddUser();
  {
    absl::MutexLock l(&fs_mu_);
    fs_.swap(fs);
  }
  if (fs) fs->DropUser();
  fs.reset();
}

std::string Task::comm() const {
  std::lock_guard<std::mutex> l(comm_mu_);
  return comm_;
}

IoCounters Task::io() const {
  IoCounters c;
  c.rchar = io_rchar_.load(std::memory_order_relaxed);
  c.wchar = io_wchar_.load(std::memory_order_relaxed);
  c.syscr = io_syscr_.load(std::memory_order_relaxed);
  c.syscw = io_syscw_.load(std::memory_order_relaxed);
  return c;
}

// ksys_read()/ksys_write() and friends: the call counts whatever it
// returned, the bytes only when it moved some.
void Task::AccountRead(int64_t bytes) {
  if (bytes > 0) io_rchar_.fetch_add(static_cast<uint64_t>(bytes), std::memory_order_relaxed);
  io_syscr_.fetch_add(1, std::memory_order_relaxed);
}

void Task::AccountWrite(int64_t bytes) {
  if (bytes > 0) io_wchar_.fetch_add(static_cast<uint64_t>(bytes), std::memory_order_relaxed);
  io_syscw_.fetch_add(1, std::memory_order_relaxed);
}

void Task::set_comm(std::string name) {
  if (name.size() > 15) name.resize(15);  // TASK_COMM_LEN - 1
  std::lock_guard<std::mutex> l(comm_mu_);
  comm_ = std::move(name);
}

char Task::StateChar() const {
  if (exited_.load()) return 'Z';
  if (ptrace_stopped_.load()) return 't';
  if (tg_->stopped) return 'T';
  if (blocked_.load()) return 'S';
  return 'R';
}

}  // namespace seedvisor::sentry
