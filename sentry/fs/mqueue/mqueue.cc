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
// sizeof(struct msg_msg) and sizeof(struct posix_msg_tree_node) on x86-64:
// what mq_attr_ok() and mqueue_get_inode() count per message.
constexpr int64_t kMsgMsgSize = 48, kTreeNodeSize = 48;

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
