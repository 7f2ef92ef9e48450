// POSIX message queues (mq_overview(7)) and the mqueue filesystem that
// names them, as Linux's ipc/mqueue.c behaves.
//
// One MqueueFs per sandbox (its IPC namespace): a flat directory of queues
// that mq_open(2) and mq_unlink(2) use directly and that every `mount -t
// mqueue` (the OCI mqueue mount, /dev/mqueue in `seedsc do`) shows, each
// queue a file whose read(2) gives its status line. A queue lives in
// sentry memory (messages by priority, FIFO within one), so a sandbox fork
// copies every queue with its messages; the only host objects are the
// readiness mirrors of open descriptions, which a fork's child remakes.
//
//   MqueueFs& fs = t.kernel().mqueue();
//   SV_ASSIGN_OR_RETURN(FileRef f, fs.Open(t, "q", O_CREAT | O_RDWR, 0600, nullptr));
//   SV_TRY(AsMqueueFile(*f)->queue().Send(t, *AsMqueueFile(*f), "hi", 1, nullptr));
#ifndef SEEDVISOR_SENTRY_FS_MQUEUE_MQUEUE_H_
#define SEEDVISOR_SENTRY_FS_MQUEUE_MQUEUE_H_

#include <signal.h>
#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "sentry/base/errno.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class Kernel;
class Task;
class ThreadGroup;
class MqueueFile;
class Readiness;

// <linux/mqueue.h> and ipc/mqueue.c's hard limits.
inline constexpr unsigned kMqPrioMax = 32768;
inline constexpr int64_t kHardMsgMax = 65536;
inline constexpr int64_t kHardMsgSizeMax = 16 * 1024 * 1024;
inline constexpr size_t kMqCookieLen = 32;  // NOTIFY_COOKIE_LEN

// struct mq_attr as the guest sees it.
struct GuestMqAttr {
  int64_t flags, maxmsg, msgsize, curmsgs;
  int64_t reserved[4];
};
static_assert(sizeof(GuestMqAttr) == 64);

// /proc/sys/fs/mqueue: the namespace's limits (Linux's defaults).
struct MqLimits {
  int64_t msg_max = 10;
  int64_t msgsize_max = 8192;
  int64_t msg_default = 10;
  int64_t msgsize_default = 8192;
  int64_t queues_max = 256;
};

// What the namespace counts across its queues: how many exist
// (queues_max) and the RLIMIT_MSGQUEUE bytes charged to each real uid.
struct MqAccounting {
  std::mutex mu;
  int64_t queues = 0;                  // guarded by mu
  std::map<uid_t, int64_t> charged;    // guarded by mu
};

// One queue: an inode of the mqueue filesystem.
class MessageQueue : public Inode {
 public:
  // `charge`: the RLIMIT_MSGQUEUE bytes charged to `charged_uid`, given
  // back (with the queue count) when the queue goes.
  MessageQueue(std::shared_ptr<MqAccounting> acct, int64_t maxmsg, int64_t msgsize, mode_t mode,
               uid_t uid, gid_t gid, uid_t charged_uid, int64_t charge);
  ~MessageQueue() override;

  Result<struct stat> Stat() override;
  Status SetAttr(const SetAttrRequest& req) override;
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override;

  int64_t maxmsg() const { return maxmsg_; }
  int64_t msgsize() const { return msgsize_; }

  // mq_timedsend(2) of a checked message: blocks while full unless
  // `nonblock` (EAGAIN), until `deadline` (CLOCK_MONOTONIC; ETIMEDOUT) or a
  // signal (ERESTARTSYS). A receiver already waiting takes it directly
  // (pipelined_send()); else it is queued and, if the queue was empty,
  // the registered notification fires.
  Status Send(Task& t, std::string msg, unsigned prio, bool nonblock, const timespec* deadline);
  // mq_timedreceive(2): the oldest message of the highest priority.
  struct Received {
    std::string data;
    unsigned prio = 0;
  };
  Result<Received> Receive(Task& t, bool nonblock, const timespec* deadline);

  // mq_notify(2). `n` null: the caller's registration goes. SIGEV_THREAD
  // needs `deliver` (queues a message on the netlink socket sigev_signo
  // names, netlink_sendskb()) and the cookie it gets back, its last byte
  // saying NOTIFY_WOKENUP or NOTIFY_REMOVED.
  struct Notification {
    int notify = SIGEV_NONE;
    int signo = 0;
    uint64_t value = 0;  // sigev_value
    std::function<void(std::string)> deliver;
    std::string cookie;
  };
  Status SetNotification(Task& t, const MqueueFile* via, const Notification* n);
  // close(2) by a task of process `tgid` (mqueue_flush_file()): the
  // registration goes if that process made it.
  void FlushOwner(int tgid);
  // The description the registration was made through is gone.
  void DropNotificationOf(const MqueueFile* via);

  // The 60-byte line read(2) gives (mqueue_read_file()).
  std::string StatusLine();
  int64_t curmsgs();
  // POLLIN|POLLRDNORM while a message waits, POLLOUT|POLLWRNORM while
  // there is room (mqueue_poll_file()).
  short PollMask();
  short PollMaskLocked() const;  // with mu() held

  // Readiness mirrors of open descriptions (MqueueFile::PollFd).
  std::mutex& mu() { return mu_; }
  void AddMirrorLocked(MqueueFile* f) { mirrored_.insert(f); }
  void RemoveMirror(MqueueFile* f);

 private:
  struct Waiter {
    Task* task;
    std::string msg;  // a blocked sender's message / what a receiver got
    unsigned prio = 0;
    bool ready = false;
  };
  void SyncMirrorsLocked();
  void InsertLocked(std::string msg, unsigned prio);
  // Fires and clears the registration (__do_notify()); what to send is
  // done by the caller after unlocking (`Fire`).
  struct Fire {
    int notify = -1;
    int signo = 0;
    uint64_t value = 0;
    std::weak_ptr<ThreadGroup> owner;
    std::function<void(std::string)> deliver;
    std::string cookie;
  };
  Fire TakeNotificationLocked(char cookie_state);
  void Deliver(Task& t, Fire f);
  void Touch(bool modify);

  const std::shared_ptr<MqAccounting> acct_;
  const int64_t maxmsg_, msgsize_;
  const uint64_t ino_;
  const uid_t charged_uid_;
  const int64_t charge_;

  std::mutex mu_;
  struct stat st_ {};                               // guarded by mu_
  std::map<unsigned, std::list<std::string>> msgs_;  // guarded by mu_; by priority
  int64_t count_ = 0, bytes_ = 0;                   // guarded by mu_
  std::list<Waiter*> senders_, receivers_;          // guarded by mu_
  // The registration (notify_owner): tgid 0 when none.
  int owner_tgid_ = 0;                       // guarded by mu_
  std::weak_ptr<ThreadGroup> owner_;         // guarded by mu_
  const MqueueFile* owner_file_ = nullptr;   // guarded by mu_
  Notification notification_;                // guarded by mu_
  std::set<MqueueFile*> mirrored_;           // guarded by mu_
};

// An open queue: mq_open(2)'s descriptor, or open(2) of a file in an
// mqueue mount. Reads give the status line; writes are EINVAL.
class MqueueFile : public FileDescription {
 public:
  MqueueFile(int flags, std::shared_ptr<Dentry> d, std::shared_ptr<MessageQueue> q);
  ~MqueueFile() override;

  MessageQueue& queue() const { return *queue_; }
  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> PRead(Task& t, char* buf, size_t len, int64_t offset) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<int64_t> Seek(int64_t offset, int whence) override;
  Result<struct stat> Stat() override { return queue_->Stat(); }
  int PollFd() const override;
  bool IsStream() const override { return false; }
  // Sandbox fork: the queue is sentry memory; the mirror is remade.
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

  // Under the queue's mu(): the mirror follows `mask`.
  void SyncMirrorLocked(short mask);

 private:
  const std::shared_ptr<MessageQueue> queue_;
  mutable std::unique_ptr<Readiness> mirror_;  // guarded by queue_->mu()
};

// The MqueueFile behind `f`, or null (EBADF for the mq_* calls).
MqueueFile* AsMqueueFile(FileDescription& f);

// The sandbox's mqueue filesystem (one per IPC namespace).
class MqueueFs {
 public:
  MqueueFs();

  // mq_open(2) of `name` (the glibc wrapper has stripped the leading '/')
  // by `t` with its filesystem credentials `c`. `attr` is mq_open's
  // attribute argument, if any.
  Result<FileRef> Open(Task& t, const FsCreds& c, const std::string& name, int oflag, mode_t mode,
                       const GuestMqAttr* attr);
  Status Unlink(const FsCreds& c, const std::string& name);

  // The root directory every mqueue mount shows.
  const InodeRef& root() const { return root_; }
  // A mount of it ("mqueue" on "mqueue", rw,nosuid,nodev,noexec).
  std::shared_ptr<Mount> NewMount() const;

  MqLimits limits();
  // A write to /proc/sys/fs/mqueue/`name`; EINVAL out of Linux's range.
  Status SetLimit(const std::string& name, std::string_view text);
  Result<std::string> LimitText(const std::string& name);

  // Makes a new queue for `t` (mqueue_create_attr()): limits, queues_max,
  // RLIMIT_MSGQUEUE. `creds` owns it.
  Result<std::shared_ptr<MessageQueue>> NewQueue(Task* t, const FsCreds& creds, mode_t mode,
                                                 const GuestMqAttr* attr);

 private:
  std::shared_ptr<MqAccounting> acct_;
  InodeRef root_;
  std::shared_ptr<Mount> internal_;  // mq_open's own mount (not in the tree)
  std::mutex mu_;
  MqLimits limits_;  // guarded by mu_
};

// Mounts `k`'s mqueue filesystem on the directory `path` of its VFS.
absl::Status MountMqueue(Kernel& k, std::string_view path);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_MQUEUE_MQUEUE_H_
