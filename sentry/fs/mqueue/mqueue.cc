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

constexpr long kMqueueMagic = 0x19800202;  // MQUEUE_MAGIC
constexpr size_t kFilentSize = 80;         // FILENT_SIZE: a queue file's i_size
constexpr char kNotifyWokenUp = 1, kNotifyRemoved = 2;
// sizeof(struct msg_msg) and sizeof(struct posix_msg_tree_node) on x86-64:
// what mq_attr_ok() and mqueue_get_inode() count per message.
constexpr int64_t kMsgMsgSize = 48, kTreeNodeSize = 48;

timespec Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

// The mqueue root: a flat directory of queues, mode 01777 (mqueue_fill_super()).
class MqueueDir : public SynthInode {
 public:
  explicit MqueueDir(MqueueFs* fs) : SynthInode(S_IFDIR | 01777), fs_(fs) {
    set_fs_magic(kMqueueMagic);
  }

  Result<InodeRef> Lookup(std::string_view name) override {
    std::lock_guard l(mu_);
    auto it = queues_.find(name);
    if (it == queues_.end()) return Errno(ENOENT);
    return InodeRef(it->second);
  }
  Result<std::vector<DirEntry>> ReadDir() override {
    std::lock_guard l(mu_);
    std::vector<DirEntry> out;
    for (const auto& [name, q] : queues_) {
      auto st = q->Stat();
      out.push_back({name, st.ok() ? static_cast<uint64_t>(st->st_ino) : 0, DT_REG});
    }
    return out;
  }
  // open(O_CREAT) in a mount (mqueue_create()): default attributes.
  Result<InodeRef> Create(std::string_view name, mode_t mode, const FsCreds& c) override {
    SV_ASSIGN_OR_RETURN(auto q, fs_->NewQueue(CurrentTask(), c, mode, nullptr));
    SV_TRY(Add(name, q));
    return InodeRef(q);
  }
  Status Mkdir(std::string_view, mode_t, const FsCreds&) override { return Errno(EPERM); }
  Status Mknod(std::string_view, mode_t, dev_t, const FsCreds&) override { return Errno(EPERM); }
  Status Symlink(std::string_view, std::string_view, const FsCreds&) override {
    return Errno(EPERM);
  }
  Status Link(std::string_view, const InodeRef&) override { return Errno(EPERM); }
  Status Rename(std::string_view, Inode&, std::string_view, unsigned) override {
    return Errno(EPERM);
  }
  Status Unlink(std::string_view name) override {
    std::lock_guard l(mu_);
    auto it = queues_.find(name);
    if (it == queues_.end()) return Errno(ENOENT);
    queues_.erase(it);
    return {};
  }

  Status Add(std::string_view name, std::shared_ptr<MessageQueue> q) {
    std::lock_guard l(mu_);
    if (queues_.count(name)) return Errno(EEXIST);
    queues_.emplace(std::string(name), std::move(q));
    return {};
  }
  std::shared_ptr<MessageQueue> Find(std::string_view name) {
    std::lock_guard l(mu_);
    auto it = queues_.find(name);
    return it == queues_.end() ? nullptr : it->second;
  }

 private:
  MqueueFs* const fs_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<MessageQueue>, std::less<>> queues_;  // guarded by mu_
};

// lookup_one_len() on the name mq_open(2)/mq_unlink(2) got: '/' anywhere,
// "." and ".." are EACCES; simple_lookup(): longer than NAME_MAX is
// ENAMETOOLONG. (getname() made an empty name ENOENT already.)
Status CheckName(const std::string& name) {
  if (name.empty()) return Errno(ENOENT);
  if (name == "." || name == "..") return Errno(EACCES);
  if (name.find('/') != std::string::npos) return Errno(EACCES);
  if (name.size() > 255) return Errno(ENAMETOOLONG);
  return {};
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

// ---------------------------------------------------------------- MqueueFs

MqueueFs::MqueueFs()
    : acct_(std::make_shared<MqAccounting>()),
      root_(std::make_shared<MqueueDir>(this)),
      internal_(std::make_shared<Mount>("mqueue", "mqueue", "rw,nosuid,nodev,noexec", root_)) {}

std::shared_ptr<Mount> MqueueFs::NewMount() const {
  return std::make_shared<Mount>("mqueue", "mqueue", "rw,nosuid,nodev,noexec,relatime", root_);
}

MqLimits MqueueFs::limits() {
  std::lock_guard l(mu_);
  return limits_;
}

Result<std::string> MqueueFs::LimitText(const std::string& name) {
  MqLimits m = limits();
  if (name == "msg_max") return absl::StrCat(m.msg_max, "\n");
  if (name == "msgsize_max") return absl::StrCat(m.msgsize_max, "\n");
  if (name == "msg_default") return absl::StrCat(m.msg_default, "\n");
  if (name == "msgsize_default") return absl::StrCat(m.msgsize_default, "\n");
  if (name == "queues_max") return absl::StrCat(m.queues_max, "\n");
  return Errno(ENOENT);
}

Status MqueueFs::SetLimit(const std::string& name, std::string_view text) {
  int64_t v;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())), &v)) return Errno(EINVAL);
  // ipc/mq_sysctl.c: the ranges proc_dointvec_minmax() enforces.
  constexpr int64_t kMinMsgMax = 1, kMinMsgSizeMax = 128;
  std::lock_guard l(mu_);
  if (name == "msg_max" || name == "msg_default") {
    if (v < kMinMsgMax || v > kHardMsgMax) return Errno(EINVAL);
    (name == "msg_max" ? limits_.msg_max : limits_.msg_default) = v;
  } else if (name == "msgsize_max" || name == "msgsize_default") {
    if (v < kMinMsgSizeMax || v > kHardMsgSizeMax) return Errno(EINVAL);
    (name == "msgsize_max" ? limits_.msgsize_max : limits_.msgsize_default) = v;
  } else if (name == "queues_max") {
    if (v < 0 || v > INT32_MAX) return Errno(EINVAL);
    limits_.queues_max = v;
  } else {
    return Errno(ENOENT);
  }
  return {};
}

Result<std::shared_ptr<MessageQueue>> MqueueFs::NewQueue(Task* t, const FsCreds& creds,
                                                         mode_t mode, const GuestMqAttr* attr) {
  const bool resource = t != nullptr && t->creds().HasCap(CAP_SYS_RESOURCE);
  MqLimits lim = limits();
  int64_t maxmsg = std::min(lim.msg_default, lim.msg_max);
  int64_t msgsize = std::min(lim.msgsize_default, lim.msgsize_max);
  if (attr != nullptr) {
    // mq_attr_ok().
    if (attr->maxmsg <= 0 || attr->msgsize <= 0) return Errno(EINVAL);
    if (resource) {
      if (attr->maxmsg > kHardMsgMax || attr->msgsize > kHardMsgSizeMax) return Errno(EINVAL);
    } else if (attr->maxmsg > lim.msg_max || attr->msgsize > lim.msgsize_max) {
      return Errno(EINVAL);
    }
    maxmsg = attr->maxmsg;
    msgsize = attr->msgsize;
  }
  // mqueue_get_inode(): the RLIMIT_MSGQUEUE charge of the real uid.
  const int64_t charge = maxmsg * msgsize + maxmsg * kMsgMsgSize +
                         std::min<int64_t>(maxmsg, kMqPrioMax) * kTreeNodeSize;
  const uid_t ruid = t != nullptr ? t->creds().ruid : creds.uid;
  const rlim_t limit = t != nullptr ? t->tg().rlimits[RLIMIT_MSGQUEUE].rlim_cur : RLIM_INFINITY;
  {
    std::lock_guard l(acct_->mu);
    // mqueue_create_attr(): queues_max first (ENOSPC), then the charge (EMFILE).
    if (acct_->queues >= lim.queues_max && !resource) return Errno(ENOSPC);
    int64_t& c = acct_->charged[ruid];
    if (limit != RLIM_INFINITY && static_cast<uint64_t>(c + charge) > limit) {
      if (c == 0) acct_->charged.erase(ruid);
      return Errno(EMFILE);
    }
    c += charge;
    ++acct_->queues;
  }
  return std::make_shared<MessageQueue>(acct_, maxmsg, msgsize, mode, creds.uid, creds.gid, ruid,
                                        charge);
}

Result<FileRef> MqueueFs::Open(Task& t, const FsCreds& creds, const std::string& name, int oflag,
                               mode_t mode, const GuestMqAttr* attr) {
  SV_TRY(CheckName(name));
  auto* dir = static_cast<MqueueDir*>(root_.get());
  std::shared_ptr<MessageQueue> q = dir->Find(name);
  if (q == nullptr) {
    // prepare_open(): a new queue (its access mode is not checked).
    if (!(oflag & O_CREAT)) return Errno(ENOENT);
    SV_ASSIGN_OR_RETURN(q, NewQueue(&t, creds, mode & ~t.fs().umask() & 0777, attr));
    SV_TRY(dir->Add(name, q));
  } else {
    if ((oflag & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) return Errno(EEXIST);
    if ((oflag & O_ACCMODE) == O_ACCMODE) return Errno(EINVAL);
    static constexpr int kAcc[3] = {R_OK, W_OK, R_OK | W_OK};
    SV_ASSIGN_OR_RETURN(struct stat st, q->Stat());
    if (!CheckAccess(creds, st, kAcc[oflag & O_ACCMODE]).ok()) return Errno(EACCES);
  }
  auto d = std::make_shared<Dentry>(name, internal_->root(), q, internal_.get());
  return q->Open(d, oflag & (O_ACCMODE | O_NONBLOCK));
}

Status MqueueFs::Unlink(const FsCreds& c, const std::string& name) {
  SV_TRY(CheckName(name));
  auto* dir = static_cast<MqueueDir*>(root_.get());
  std::shared_ptr<MessageQueue> q = dir->Find(name);
  if (q == nullptr) return Errno(ENOENT);
  // may_delete() in the sticky root: the queue's owner or CAP_FOWNER.
  SV_ASSIGN_OR_RETURN(struct stat st, q->Stat());
  if (st.st_uid != c.uid && c.uid != 0 && !c.fowner) return Errno(EPERM);
  return dir->Unlink(name);
}

absl::Status MountMqueue(Kernel& k, std::string_view path) {
  return k.vfs().MountAt(path, k.mqueue().NewMount());
}

MqueueFs& Kernel::mqueue() {
  std::call_once(mqueue_once_, [this] { mqueue_ = std::make_shared<MqueueFs>(); });
  return *mqueue_;
}

}  // namespace seedvisor::sentry
