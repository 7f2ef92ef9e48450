// fsnotify: the sentry's filesystem event hooks (Linux's fsnotify layer),
// which inotify(7) instances (sentry/fs/inotify) subscribe to.
//
// The VFS and the file syscalls report what guest tasks do (open, read,
// write, close, create, unlink, rename, attribute changes); a watch is on a
// file, named by Inode::LockKey() as file locks are: an overlay makes a new
// Inode object for a renamed entry while the old one lives on in a cwd or an
// open file, and the events through either are the file's (Linux's watch is
// on the inode). A watch holds the Dentry it was added through, so that
// object stays cached. Changes made by the host outside the sandbox are not
// seen.
//
//   FsnotifyAddWatch(dentry, sink, /*wd=*/1, IN_MODIFY | IN_CREATE);
//   FsnotifyDir(*dir, IN_CREATE, "newfile");   // sink->Event(1, IN_CREATE, 0, "newfile")
//
// With no watch anywhere every hook returns after one atomic load; while one
// exists, a hook asks LockKey() (a Stat) of the objects it reports on.
#ifndef SEEDVISOR_SENTRY_VFS_FSNOTIFY_H_
#define SEEDVISOR_SENTRY_VFS_FSNOTIFY_H_

#include <sys/inotify.h>

#include <cstdint>
#include <functional>
#include <string_view>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

// Receives the events of its watches. Event() is called with the registry's
// lock held: it must not call back into the registry.
class FsnotifySink {
 public:
  virtual ~FsnotifySink() = default;
  virtual void Event(int wd, uint32_t mask, uint32_t cookie, std::string_view name) = 0;
};

// From a sink's Event(): runs `fn` once the hook that delivers the event
// has let go of the registry's lock, on the same thread, before the hook
// returns (dnotify's signal, which takes the kernel's lock, is sent before
// the syscall that caused it returns).
void FsnotifyAfterEvents(std::function<void()> fn);

// Adds or replaces the sink's watch `wd` on `d`'s file with `mask` (the
// IN_* events and IN_ONESHOT/IN_EXCL_UNLINK). A sink keeps one wd per file
// (its LockKey()): a second path to the file replaces the mask only.
void FsnotifyAddWatch(const DentryRef& d, FsnotifySink* sink, int wd, uint32_t mask);
// Removes the sink's watch `wd`; queues IN_IGNORED if `ignored`. False if
// there was no such watch.
bool FsnotifyRemoveWatch(FsnotifySink* sink, int wd, bool ignored);
// Removes every watch of `sink` (its file is going away), without events.
void FsnotifyRemoveAll(FsnotifySink* sink);

// `mask` happened to `d`'s object: its watches see it, and so do its
// parent directory's, with d's name (fsnotify_parent()). IN_ISDIR is added
// for directories.
void FsnotifyDentry(const Dentry& d, uint32_t mask);
// `mask` (IN_CREATE, IN_DELETE, IN_MOVED_FROM/TO, with IN_ISDIR if so)
// happened to the entry `name` of directory `dir`.
void FsnotifyDir(const Dentry& dir, uint32_t mask, std::string_view name, uint32_t cookie = 0);
// `mask` happened to `inode` itself only (IN_MOVE_SELF, IN_ATTRIB on a link
// count change).
void FsnotifyInode(Inode& inode, uint32_t mask);
// The object lost its last link: IN_DELETE_SELF, then IN_IGNORED, and its
// watches are gone. Linux waits for the last close; here it is immediate.
void FsnotifyDeleted(Inode& inode);
// A fresh rename cookie.
uint32_t FsnotifyCookie();
// The events a file's I/O makes: IN_ACCESS, IN_MODIFY, IN_CLOSE_*, IN_OPEN
// (with kFsnotifyOpenExec for an execve's open).
void FsnotifyFile(const FileDescription& f, uint32_t mask);
// FS_OPEN_EXEC: an open for execve(2) (fanotify's FAN_OPEN_EXEC; inotify
// sees only its IN_OPEN).
inline constexpr uint32_t kFsnotifyOpenExec = 0x00001000;
// FMODE_NONOTIFY: `f`, a file fanotify opened for its listener, makes no
// events until it is released (its close is its last), or reading the
// event fd would queue more.
void FsnotifyNoNotify(const FileDescription& f);

// fanotify(7) (sentry/fs/fanotify) receives every event on a dentry
// (FsnotifyDentry, FsnotifyFile) through one hook while any fanotify group
// lives: `mask` with IN_ISDIR for a directory. Called with no lock held.
using FanotifyHook = void (*)(const Dentry& d, uint32_t mask);
void FsnotifySetFanotifyHook(FanotifyHook hook);
// Groups alive (fanotify_init(2) adds one, the file's release removes it):
// with none, the hook is not called.
void FsnotifyFanotifyGroups(int delta);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_FSNOTIFY_H_
