#include "sentry/vfs/fsnotify.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

namespace seedvisor::sentry {

namespace {

struct Watch {
  FsnotifySink* sink;
  int wd;
  uint32_t mask;
  DentryRef dentry;  // keeps the object's dentry (and inode) cached
};

std::mutex g_mu;
// Watched objects -> their watches. Keyed by the file (Inode::LockKey), not
// by the Inode object: an overlay makes a new object for each lookup of a
// renamed entry, while the old one lives on in a cwd or an open file, and
// the events through both are the watched object's. Leaked: hooks may run
// during exit.
auto* g_watches = new std::map<FileLockKey, std::vector<Watch>>;
std::atomic<int> g_count{0};
std::atomic<uint32_t> g_cookie{0};
std::atomic<FanotifyHook> g_fan_hook{nullptr};
std::atomic<int> g_fan_groups{0};
// FsnotifyNoNotify's files, until their close event (from their
// destructor) takes them out: no address is reused while it is here.
std::mutex g_quiet_mu;
auto* g_quiet = new std::set<const FileDescription*>;
std::atomic<int> g_quiet_count{0};

// The registry's key of `inode`: a Stat, so hooks ask for it before they
// take g_mu, and only while a watch exists.
FileLockKey KeyOf(Inode& inode) { return inode.LockKey(); }

// Delivers `mask` to the watches on the object `key`; `child` events come
// from a child of the watched directory (`unlinked`: the child has no name
// left). Dentries of removed watches are moved to `drop`, to be released
// unlocked.
void DeliverLocked(const FileLockKey& key, uint32_t mask, uint32_t cookie, std::string_view name,
                   bool child, bool unlinked, std::vector<DentryRef>* drop) {
  auto it = g_watches->find(key);
  if (it == g_watches->end()) return;
  auto& ws = it->second;
  for (size_t i = 0; i < ws.size();) {
    Watch& w = ws[i];
    uint32_t ev = mask & w.mask & IN_ALL_EVENTS;
    if (!ev || (child && unlinked && (w.mask & IN_EXCL_UNLINK))) {
      ++i;
      continue;
    }
    w.sink->Event(w.wd, ev | (mask & IN_ISDIR), cookie, name);
    if (w.mask & IN_ONESHOT) {  // inotify(7): removed after one event
      w.sink->Event(w.wd, IN_IGNORED, 0, {});
      drop->push_back(std::move(w.dentry));
      ws.erase(ws.begin() + static_cast<long>(i));
      --g_count;
      continue;
    }
    ++i;
  }
  if (ws.empty()) g_watches->erase(it);
}

// What sinks asked to run after the events (FsnotifyAfterEvents).
thread_local std::vector<std::function<void()>> t_after;

// Declared before a hook's lock: runs what its events asked for once the
// lock is released.
struct AfterEvents {
  AfterEvents() = default;
  AfterEvents(const AfterEvents&) = delete;
  AfterEvents& operator=(const AfterEvents&) = delete;
  ~AfterEvents() {
    while (!t_after.empty()) {
      std::vector<std::function<void()>> run;
      run.swap(t_after);
      for (auto& fn : run) fn();
    }
  }
};

bool IsDir(const Inode& i) { return const_cast<Inode&>(i).Type() == S_IFDIR; }

}  // namespace

void FsnotifyAfterEvents(std::function<void()> fn) { t_after.push_back(std::move(fn)); }

void FsnotifyAddWatch(const DentryRef& d, FsnotifySink* sink, int wd, uint32_t mask) {
  const FileLockKey key = KeyOf(*d->inode());
  std::lock_guard<std::mutex> l(g_mu);
  auto& ws = (*g_watches)[key];
  for (Watch& w : ws) {
    if (w.sink == sink && w.wd == wd) {
      w.mask = mask;
      return;
    }
  }
  ws.push_back(Watch{sink, wd, mask, d});
  ++g_count;
}

bool FsnotifyRemoveWatch(FsnotifySink* sink, int wd, bool ignored) {
  AfterEvents after;
  DentryRef drop;
  std::lock_guard<std::mutex> l(g_mu);
  for (auto it = g_watches->begin(); it != g_watches->end(); ++it) {
    auto& ws = it->second;
    for (size_t i = 0; i < ws.size(); ++i) {
      if (ws[i].sink != sink || ws[i].wd != wd) continue;
      drop = std::move(ws[i].dentry);
      ws.erase(ws.begin() + static_cast<long>(i));
      if (ws.empty()) g_watches->erase(it);
      --g_count;
      if (ignored) sink->Event(wd, IN_IGNORED, 0, {});
      return true;
    }
  }
  return false;
}

void FsnotifyRemoveAll(FsnotifySink* sink) {
  std::vector<DentryRef> drop;
  std::lock_guard<std::mutex> l(g_mu);
  for (auto it = g_watches->begin(); it != g_watches->end();) {
    auto& ws = it->second;
    for (size_t i = 0; i < ws.size();) {
      if (ws[i].sink == sink) {
        drop.push_back(std::move(ws[i].dentry));
        ws.erase(ws.begin() + static_cast<long>(i));
        --g_count;
      } else {
        ++i;
      }
    }
    it = ws.empty() ? g_watches->erase(it) : std::next(it);
  }
}

void FsnotifySetFanotifyHook(FanotifyHook hook) { g_fan_hook.store(hook); }
void FsnotifyFanotifyGroups(int delta) { g_fan_groups.fetch_add(delta); }

void FsnotifyNoNotify(const FileDescription& f) {
  std::lock_guard l(g_quiet_mu);
  if (g_quiet->insert(&f).second) ++g_quiet_count;
}

void FsnotifyDentry(const Dentry& d, uint32_t mask) {
  if (g_fan_groups.load(std::memory_order_relaxed) != 0) {
    if (FanotifyHook hook = g_fan_hook.load()) {
      hook(d, mask | (IsDir(*d.inode()) ? IN_ISDIR : 0));
    }
  }
  mask &= ~kFsnotifyOpenExec;
  if (g_count.load(std::memory_order_relaxed) == 0) return;
  const FileLockKey self = KeyOf(*d.inode());
  std::optional<FileLockKey> parent;
  if (d.parent()) parent = KeyOf(*d.parent()->inode());
  AfterEvents after;
  std::vector<DentryRef> drop;
  std::lock_guard<std::mutex> l(g_mu);
  bool self_watched = g_watches->count(self) > 0;
  bool parent_watched = parent && g_watches->count(*parent) > 0;
  if (!self_watched && !parent_watched) return;
  if (IsDir(*d.inode())) mask |= IN_ISDIR;
  // The parent directory's watches hear of it first (as Linux 6.x
  // reports an event on a watched child of a watched directory).
  if (parent_watched) DeliverLocked(*parent, mask, 0, d.name(), true, d.deleted(), &drop);
  if (self_watched) DeliverLocked(self, mask, 0, {}, false, false, &drop);
}

void FsnotifyDir(const Dentry& dir, uint32_t mask, std::string_view name, uint32_t cookie) {
  if (g_count.load(std::memory_order_relaxed) == 0) return;
  const FileLockKey key = KeyOf(*dir.inode());
  AfterEvents after;
  std::vector<DentryRef> drop;
  std::lock_guard<std::mutex> l(g_mu);
  DeliverLocked(key, mask, cookie, name, false, false, &drop);
}

void FsnotifyInode(Inode& inode, uint32_t mask) {
  if (g_count.load(std::memory_order_relaxed) == 0) return;
  const FileLockKey key = KeyOf(inode);
  AfterEvents after;
  std::vector<DentryRef> drop;
  std::lock_guard<std::mutex> l(g_mu);
  if (!g_watches->count(key)) return;
  // IN_MOVE_SELF never carries IN_ISDIR (Linux 6.x reports a moved
  // directory's own event as 0x800, as for a file).
  if (IsDir(inode) && !(mask & IN_MOVE_SELF)) mask |= IN_ISDIR;
  DeliverLocked(key, mask, 0, {}, false, false, &drop);
}

void FsnotifyDeleted(Inode& inode) {
  if (g_count.load(std::memory_order_relaxed) == 0) return;
  const FileLockKey key = KeyOf(inode);
  AfterEvents after;
  std::vector<DentryRef> drop;
  std::lock_guard<std::mutex> l(g_mu);
  auto it = g_watches->find(key);
  if (it == g_watches->end()) return;
  for (Watch& w : it->second) {
    if (w.mask & IN_DELETE_SELF) w.sink->Event(w.wd, IN_DELETE_SELF, 0, {});
    w.sink->Event(w.wd, IN_IGNORED, 0, {});
    drop.push_back(std::move(w.dentry));
    --g_count;
  }
  g_watches->erase(it);
}

uint32_t FsnotifyCookie() { return ++g_cookie; }

void FsnotifyFile(const FileDescription& f, uint32_t mask) {
  if (g_quiet_count.load(std::memory_order_relaxed) != 0) {
    std::lock_guard l(g_quiet_mu);
    auto it = g_quiet->find(&f);
    if (it != g_quiet->end()) {
      if (mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) {  // the last one
        g_quiet->erase(it);
        --g_quiet_count;
      }
      return;
    }
  }
  if (g_count.load(std::memory_order_relaxed) == 0 &&
      g_fan_groups.load(std::memory_order_relaxed) == 0) {
    return;
  }
  if (!f.dentry() || (f.flags() & O_PATH)) return;
  FsnotifyDentry(*f.dentry(), mask);
}

}  // namespace seedvisor::sentry
