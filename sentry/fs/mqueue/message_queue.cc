// MessageQueue (one POSIX message queue: its messages by priority, its
// readers and writers, its notification) and MqueueFile (an open queue).
#include "sentry/fs/mqueue/mqueue.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sys/statfs.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "sentry/fs/devpts/readiness.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

constexpr size_t kFilentSize = 80;         // FILENT_SIZE: a queue file's i_size
constexpr char kNotifyWokenUp = 1, kNotifyRemoved = 2;

timespec Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

}  // namespace

// ---------------------------------------------------------------- MessageQueue

MessageQueue::MessageQueue(std::shared_ptr<MqAccounting> acct, int64_t maxmsg, int64_t msgsize,
                           mode_t mode, uid_t uid, gid_t gid, uid_t charged_uid, int64_t charge)
    : acct_(std::move(acct)),
      maxmsg_(maxmsg),
      msgsize_(msgsize),
      ino_(NextSynthIno()),
      charged_uid_(charged_uid),
      charge_(charge) {
  st_.st_mode = S_IFREG | (mode & 07777);
  st_.st_ino = ino_;
  st_.st_nlink = 1;
  st_.st_uid = uid;
  st_.st_gid = gid;
  st_.st_size = kFilentSize;
  st_.st_blksize = 4096;
  st_.st_atim = st_.st_mtim = st_.st_ctim = Now();
}

MessageQueue::~MessageQueue() {
  // mqueue_evict_inode(): the queue count and the creator's charge go back.
  std::lock_guard l(acct_->mu);
  --acct_->queues;
  auto it = acct_->charged.find(charged_uid_);
  if (it != acct_->charged.end() && (it->second -= charge_) <= 0) acct_->charged.erase(it);
}

Result<struct stat> MessageQueue::Stat() {
  std::lock_guard l(mu_);
  return st_;
}

Status MessageQueue::SetAttr(const SetAttrRequest& req) {
  if (req.size) return Errno(EINVAL);
  std::lock_guard l(mu_);
  ApplyAttrs(req, st_);
  st_.st_ctim = Now();
  return {};
}

Result<FileRef> MessageQueue::Open(const std::shared_ptr<Dentry>& d, int flags) {
  auto self = std::static_pointer_cast<MessageQueue>(shared_from_this());
  return FileRef(std::make_shared<MqueueFile>(flags & ~(O_CREAT | O_EXCL | O_TRUNC), d, self));
}

void MessageQueue::Touch(bool modify) {
  timespec now = Now();
  st_.st_atim = now;
  if (modify) st_.st_mtim = st_.st_ctim = now;
}

short MessageQueue::PollMaskLocked() const {
  short m = 0;
  if (count_ > 0) m |= POLLIN | POLLRDNORM;
  if (count_ < maxmsg_) m |= POLLOUT | POLLWRNORM;
  return m;
}

short MessageQueue::PollMask() {
  std::lock_guard l(mu_);
  return PollMaskLocked();
}

int64_t MessageQueue::curmsgs() {
  std::lock_guard l(mu_);
  return count_;
}

void MessageQueue::SyncMirrorsLocked() {
  short m = PollMaskLocked();
  for (MqueueFile* f : mirrored_) f->SyncMirrorLocked(m);
}

void MessageQueue::RemoveMirror(MqueueFile* f) {
  std::lock_guard l(mu_);
  mirrored_.erase(f);
}

void MessageQueue::InsertLocked(std::string msg, unsigned prio) {
  bytes_ += static_cast<int64_t>(msg.size());
  ++count_;
  msgs_[prio].push_back(std::move(msg));
}

MessageQueue::Fire MessageQueue::TakeNotificationLocked(char cookie_state) {
  Fire f;
  if (owner_tgid_ == 0) return f;
  f.notify = notification_.notify;
  f.signo = notification_.signo;
  f.value = notification_.value;
  f.owner = owner_;
  f.deliver = std::move(notification_.deliver);
  f.cookie = std::move(notification_.cookie);
  if (f.cookie.size() == kMqCookieLen) f.cookie[kMqCookieLen - 1] = cookie_state;
  owner_tgid_ = 0;
  owner_.reset();
  owner_file_ = nullptr;
  notification_ = Notification{};
  return f;
}

void MessageQueue::Deliver(Task& t, Fire f) {
  if (f.notify == SIGEV_THREAD) {
    // The cookie goes to the socket glibc's helper thread reads.
    if (f.deliver) f.deliver(std::move(f.cookie));
    return;
  }
  if (f.notify != SIGEV_SIGNAL || f.signo == 0) return;  // do_mq_notify() accepts signo 0
  std::shared_ptr<ThreadGroup> tg = f.owner.lock();
  if (tg == nullptr) return;
  siginfo_t info{};
  info.si_signo = f.signo;
  info.si_code = SI_MESGQ;
  info.si_pid = t.tgid();
  info.si_uid = t.creds().ruid;
  info.si_value.sival_ptr = reinterpret_cast<void*>(f.value);
  absl::MutexLock l(&t.kernel().mu());
  (void)t.kernel().SendGroupSignal(*tg, info, nullptr, SignalSender::kSandboxTask);
}

Status MessageQueue::Send(Task& t, std::string msg, unsigned prio, bool nonblock,
                          const timespec* deadline) {
  std::unique_lock l(mu_);
  if (!receivers_.empty()) {
    // pipelined_send(): the first waiting receiver takes it; the queue
    // stays empty, so no notification fires.
    Waiter* w = receivers_.front();
    receivers_.pop_front();
    w->msg = std::move(msg);
    w->prio = prio;
    w->ready = true;
    Touch(true);
    TaskNotify(*w->task);
    return {};
  }
  if (count_ >= maxmsg_) {
    if (nonblock) return Errno(EAGAIN);
    Waiter w{&t, std::move(msg), prio};
    senders_.push_back(&w);
    for (;;) {
      l.unlock();
      Status s = TaskBlockOnFd(t, -1, 0, deadline);
      l.lock();
      if (w.ready) return {};  // a receiver queued it for us
      if (!s.ok()) {
        senders_.remove(&w);
        return s.error();
      }
    }
  }
  InsertLocked(std::move(msg), prio);
  Touch(true);
  Fire f;
  if (count_ == 1) f = TakeNotificationLocked(kNotifyWokenUp);
  SyncMirrorsLocked();
  l.unlock();
  Deliver(t, std::move(f));
  return {};
}

Result<MessageQueue::Received> MessageQueue::Receive(Task& t, bool nonblock,
                                                     const timespec* deadline) {
  std::unique_lock l(mu_);
  Received r;
  if (count_ == 0) {
    if (nonblock) return Errno(EAGAIN);
    Waiter w{&t, {}, 0};
    receivers_.push_back(&w);
    for (;;) {
      l.unlock();
      Status s = TaskBlockOnFd(t, -1, 0, deadline);
      l.lock();
      if (w.ready) {
        r.data = std::move(w.msg);
        r.prio = w.prio;
        return r;
      }
      if (!s.ok()) {
        receivers_.remove(&w);
        return s.error();
      }
    }
  }
  auto it = std::prev(msgs_.end());  // the highest priority
  r.data = std::move(it->second.front());
  r.prio = it->first;
  it->second.pop_front();
  if (it->second.empty()) msgs_.erase(it);
  --count_;
  bytes_ -= static_cast<int64_t>(r.data.size());
  Touch(true);
  // pipelined_receive(): the first blocked sender's message takes the room.
  if (!senders_.empty()) {
    Waiter* w = senders_.front();
    senders_.pop_front();
    InsertLocked(std::move(w->msg), w->prio);
    w->ready = true;
    TaskNotify(*w->task);
  }
  SyncMirrorsLocked();
  return r;
}

Status MessageQueue::SetNotification(Task& t, const MqueueFile* via, const Notification* n) {
  // A registration whose process has exited no longer blocks others (its
  // exit closed the queue: mqueue_flush_file()). Kernel::mu() is taken
  // outside mu_.
  std::shared_ptr<ThreadGroup> owner;
  {
    std::lock_guard l(mu_);
    owner = owner_.lock();
  }
  bool owner_exited = false;
  if (owner != nullptr) {
    absl::MutexLock kl(&t.kernel().mu());
    owner_exited = owner->state != ThreadGroup::State::kAlive || owner->group_exiting;
  }
  Fire removed;
  {
    std::lock_guard l(mu_);
    if (owner_tgid_ != 0 &&
        (owner_.expired() || (owner_exited && owner_.lock() == owner))) {
      (void)TakeNotificationLocked(kNotifyRemoved);
    }
    if (n == nullptr) {
      if (owner_tgid_ == t.tgid()) removed = TakeNotificationLocked(kNotifyRemoved);
    } else {
      if (owner_tgid_ != 0) return Errno(EBUSY);
      owner_tgid_ = t.tgid();
      owner_ = t.shared_tg();
      owner_file_ = via;
      notification_ = *n;
    }
  }
  // A removal tells only a SIGEV_THREAD registration (its REMOVED cookie).
  if (removed.notify == SIGEV_THREAD && removed.deliver) removed.deliver(std::move(removed.cookie));
  return {};
}

void MessageQueue::FlushOwner(int tgid) {
  Fire removed;
  {
    std::lock_guard l(mu_);
    if (owner_tgid_ == 0 || owner_tgid_ != tgid) return;
    removed = TakeNotificationLocked(kNotifyRemoved);
  }
  if (removed.notify == SIGEV_THREAD && removed.deliver) removed.deliver(std::move(removed.cookie));
}

void MessageQueue::DropNotificationOf(const MqueueFile* via) {
  Fire removed;
  {
    std::lock_guard l(mu_);
    if (owner_tgid_ == 0 || owner_file_ != via) return;
    removed = TakeNotificationLocked(kNotifyRemoved);
  }
  // Only a SIGEV_THREAD registration has something to send (its REMOVED
  // cookie), and that needs no task.
  if (removed.notify == SIGEV_THREAD && removed.deliver) removed.deliver(std::move(removed.cookie));
}

std::string MessageQueue::StatusLine() {
  std::lock_guard l(mu_);
  const bool reg = owner_tgid_ != 0 && !owner_.expired();
  return absl::StrFormat("QSIZE:%-10d NOTIFY:%-5d SIGNO:%-5d NOTIFY_PID:%-6d\n", bytes_,
                         reg ? notification_.notify : 0,
                         reg && notification_.notify == SIGEV_SIGNAL ? notification_.signo : 0,
                         reg ? owner_tgid_ : 0);
}

// ---------------------------------------------------------------- MqueueFile

MqueueFile::MqueueFile(int flags, std::shared_ptr<Dentry> d, std::shared_ptr<MessageQueue> q)
    : FileDescription(flags, std::move(d)), queue_(std::move(q)) {}

MqueueFile::~MqueueFile() {
  queue_->DropNotificationOf(this);
  queue_->RemoveMirror(this);
}

MqueueFile* AsMqueueFile(FileDescription& f) { return dynamic_cast<MqueueFile*>(&f); }

Result<size_t> MqueueFile::PRead(Task&, char* buf, size_t len, int64_t offset) {
  return PReadString(queue_->StatusLine(), buf, len, offset);
}

Result<size_t> MqueueFile::Read(Task& t, char* buf, size_t len) {
  return ReadAtOffset(t, buf, len);
}

Result<size_t> MqueueFile::Write(Task&, const char*, size_t) { return Errno(EINVAL); }

Result<int64_t> MqueueFile::Seek(int64_t offset, int whence) {
  // default_llseek() with i_size FILENT_SIZE.
  std::lock_guard l(offset_mu_);
  int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? offset_
                 : whence == SEEK_END ? static_cast<int64_t>(kFilentSize)
                                      : -1;
  if (base < 0 && whence != SEEK_CUR) return Errno(EINVAL);
  if (base + offset < 0) return Errno(EINVAL);
  offset_ = base + offset;
  return offset_;
}

int MqueueFile::PollFd() const {
  std::lock_guard l(queue_->mu());
  if (mirror_ == nullptr) {
    auto r = Readiness::Create();
    if (!r.ok()) return -1;
    mirror_ = std::move(*r);
    queue_->AddMirrorLocked(const_cast<MqueueFile*>(this));
    const_cast<MqueueFile*>(this)->SyncMirrorLocked(queue_->PollMaskLocked());
  }
  return mirror_->fd();
}

void MqueueFile::SyncMirrorLocked(short mask) {
  if (mirror_ != nullptr) mirror_->Set((mask & POLLIN) != 0, (mask & POLLOUT) != 0);
}

absl::Status MqueueFile::AdoptInForkChild(ForkFileContext&) {
  std::lock_guard l(queue_->mu());
  if (mirror_ == nullptr) return absl::OkStatus();
  // The seed keeps its own host socketpair; ours is new, in the same state.
  if (Status s = mirror_->RecreateInForkChild(); !s.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat(DisplayPath(), ": readiness socketpair: ",
                                                     strerror(s.error().value())));
  }
  SyncMirrorLocked(queue_->PollMaskLocked());
  return absl::OkStatus();
}

}  // namespace seedvisor::sentry
