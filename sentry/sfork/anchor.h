// The anchor of a sandbox fork (spares.h): the host process that leads the
// process group of a fork's host processes (its zygote, stub copies and
// guest stubs) and kills that group once the forked sentry is gone; and the
// forked sentry's side of it, which ends the sandbox should the anchor die
// first (sfork.h, WatchOwnAnchor). Internal to sentry/sfork.
//
//   SV: in the seed, making a spare:
//   pid_t anchor = fork();
//   if (anchor == 0) RunAnchor(life[0], report_fd);
//   SV: in the forked sentry, on its only thread:
//   AdoptOwnAnchor(spare.anchor, spare.life_fd);
#ifndef SEEDVISOR_SENTRY_SFORK_ANCHOR_H_
#define SEEDVISOR_SENTRY_SFORK_ANCHOR_H_

#include <sys/types.h>

namespace seedvisor::sentry {

// In the anchor, right after its fork (async-signal-safe only): waits for
// the end of file on its life line `life_fd` (every write end closed: the
// forked sentry is gone), reports what the fork's copies wrote through
// `report_fd` (-1: none; dirty_pages.h), and kills its group.
[[noreturn]] void RunAnchor(int life_fd, int report_fd);

// In a forked sentry, on its only thread: `anchor` and the write end of its
// life line are its own for its whole life; its parent's (a fork of a
// fork) go. Opens the anchor's pidfd for WatchOwnAnchor.
void AdoptOwnAnchor(pid_t anchor, int life_fd);

// A forked sentry's anchor; -1 in a booted sentry.
pid_t OwnAnchor();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_ANCHOR_H_
