// Mount (inode.h): one mounted filesystem: its flags and options text,
// its dentry cache, the holds that keep it writable or busy (MountHold),
// and StatOf, a stat(2) that shows a mount's anonymous device.
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

namespace {

// ST_NOSYMFOLLOW (Linux 5.10), which older C libraries lack.
constexpr unsigned long kStNoSymfollow = 0x2000;

// Per-mount flags, in show_mnt_opts()'s order.
constexpr const char* kMountFlags[] = {"nosuid",     "nodev",    "noexec",     "noatime",
                                       "nodiratime", "relatime", "nosymfollow"};

bool IsMountFlag(std::string_view opt) {
  for (const char* f : kMountFlags) {
    if (opt == f) return true;
  }
  return false;
}

std::vector<std::string_view> SplitOptions(std::string_view options) {
  std::vector<std::string_view> out;
  for (size_t pos = 0; pos < options.size();) {
    size_t end = options.find(',', pos);
    if (end == std::string_view::npos) end = options.size();
    if (end > pos) out.push_back(options.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

void Mount::set_read_only() {
  if (read_only_) return;
  read_only_ = true;
  options_ = options_.rfind("rw", 0) == 0 ? "ro" + options_.substr(2) : "ro," + options_;
  NoteOptions();
}

void Mount::NoteOptions() {
  // flags_by_mnt()'s table, by the names show_mnt_opts() gives them.
  static constexpr std::pair<std::string_view, unsigned long> kBits[] = {
      {"ro", ST_RDONLY},         {"nosuid", ST_NOSUID},         {"nodev", ST_NODEV},
      {"noexec", ST_NOEXEC},     {"noatime", ST_NOATIME},       {"nodiratime", ST_NODIRATIME},
      {"relatime", ST_RELATIME}, {"nosymfollow", kStNoSymfollow}};
  unsigned long bits = 0;
  for (std::string_view o : SplitOptions(options_)) {
    for (const auto& [name, bit] : kBits) {
      if (o == name) bits |= bit;
    }
  }
  st_flags_.store(bits, std::memory_order_relaxed);
}

unsigned long Mount::StatFsFlags() const {
  constexpr unsigned long kStValid = 0x0020;  // ST_VALID (include/linux/statfs.h)
  return kStValid | st_flags_.load(std::memory_order_relaxed) |
         (sb_read_only() ? ST_RDONLY : 0);
}

void Mount::SetMountFlags(std::string_view flags, bool superblock) {
  std::string out(flags);
  for (std::string_view o : SplitOptions(options_)) {
    if (o == "ro" || o == "rw" || IsMountFlag(o)) continue;
    out += ",";
    out += o;
  }
  options_ = std::move(out);
  read_only_ = flags.substr(0, 2) == "ro";
  if (superblock) sb_read_only_->store(read_only_);
  NoteOptions();
}

void Mount::DropDentryCache() {
  std::list<DentryRef> dropped;  // destroyed outside the lock
  std::lock_guard l(cache_mu_);
  dropped.swap(lru_);
  lru_pos_.clear();
}

void Mount::CacheDentry(const DentryRef& d) {
  DentryRef evicted;  // destroyed outside the lock (it may free a whole chain)
  std::lock_guard l(cache_mu_);
  auto it = lru_pos_.find(d.get());
  if (it != lru_pos_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(d);
  lru_pos_[d.get()] = lru_.begin();
  if (lru_.size() > kDentryCacheSize) {
    evicted = std::move(lru_.back());
    lru_pos_.erase(evicted.get());
    lru_.pop_back();
  }
}

void Mount::UncacheDentry(const Dentry* d) {
  DentryRef gone;
  std::lock_guard l(cache_mu_);
  auto it = lru_pos_.find(d);
  if (it == lru_pos_.end()) return;
  gone = std::move(*it->second);
  lru_.erase(it->second);
  lru_pos_.erase(it);
}

size_t Mount::CachedDentries() {
  std::lock_guard l(cache_mu_);
  return lru_.size();
}

Mount::Mount(std::string fstype, std::string source, std::string options, InodeRef root_inode)
    : fstype_(std::move(fstype)), source_(std::move(source)), options_(std::move(options)) {
  // Anonymous devices 0:N from 0x50 up (below: sockfs, pipefs,
  // anon_inodefs, devpts use fixed small numbers).
  static std::atomic<unsigned> next_anon{0x50};
  anon_dev_ = makedev(0, next_anon.fetch_add(1));
  root_ = std::make_shared<Dentry>("/", nullptr, std::move(root_inode), this);
  root_->inode()->Mounted(root_);
  for (size_t pos = 0; pos <= options_.size();) {
    size_t end = options_.find(',', pos);
    if (end == std::string::npos) end = options_.size();
    if (options_.compare(pos, end - pos, "ro") == 0) read_only_ = true;
    pos = end + 1;
  }
  sb_read_only_->store(read_only_);
  NoteOptions();
}

MountHold::MountHold(const Mount* m, bool write)
    : counts_(m != nullptr ? m->counts() : nullptr), write_(write && m != nullptr) {
  if (counts_ == nullptr) return;
  counts_->users.fetch_add(1);
  if (write_) {
    counts_->writers.fetch_add(1);
    counts_->fs_writers->fetch_add(1);
  }
}

MountHold::MountHold(MountHold&& o) noexcept
    : counts_(std::move(o.counts_)), write_(std::exchange(o.write_, false)) {}

MountHold& MountHold::operator=(MountHold&& o) noexcept {
  if (this != &o) {
    Release();
    counts_ = std::move(o.counts_);
    write_ = std::exchange(o.write_, false);
  }
  return *this;
}

void MountHold::Release() {
  if (counts_ == nullptr) return;
  counts_->users.fetch_sub(1);
  if (write_) {
    counts_->writers.fetch_sub(1);
    counts_->fs_writers->fetch_sub(1);
  }
  counts_.reset();
  write_ = false;
}

std::string Mount::MountOptionsText() const {
  std::string out = read_only_ ? "ro" : "rw";
  const std::vector<std::string_view> opts = SplitOptions(options_);
  for (const char* f : kMountFlags) {
    for (std::string_view o : opts) {
      if (o == f) {
        out += ",";
        out += f;
        break;
      }
    }
  }
  return out;
}

std::string Mount::MountsOptionsText() const {
  if (!writes_refused() || options_.rfind("ro", 0) == 0) return options_;
  return options_.rfind("rw", 0) == 0 ? "ro" + options_.substr(2) : "ro," + options_;
}

std::string Mount::SuperOptionsText() const {
  std::string out = sb_read_only() ? "ro" : "rw";
  for (std::string_view o : SplitOptions(options_)) {
    if (o == "ro" || o == "rw" || IsMountFlag(o)) continue;
    out += ",";
    out += o;
  }
  return out;
}

Result<struct stat> StatOf(const Dentry* d, FileDescription* f) {
  SV_ASSIGN_OR_RETURN(struct stat st, f ? f->Stat() : d->inode()->Stat());
  if (st.st_dev == 0 && d && d->mount()) st.st_dev = d->mount()->anon_dev();
  return st;
}

}  // namespace seedvisor::sentry
