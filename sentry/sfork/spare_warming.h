// Warming a seed's spares: sfork.cc's side of pre-broken copy-on-write
// (dirty_pages.h). The guest pages the seed's earlier forks wrote, which
// their anchors reported, are written ahead in a new spare's stub copies
// off the fork's path and outside the caller's fork lock, so that a fork's
// guest does not take those copy-on-write faults itself (issue 10).
//
// A spare's way through it (sfork.h: PrepareForkSpare, WarmForkSpare,
// PublishForkSpare):
//   1. under the fork lock, once its copies exist, PlanSpareDirtyPages names
//      them and their prebreakable ranges down the anchor's life line (the
//      anchor reports what its fork wrote there when the fork ends) and
//      fills the SpareWarmup with the pages to write ahead;
//   2. with pages to write, the spare waits in the warming set (HoldForWarming),
//      not in the pool; WarmForkSpare writes them without the lock;
//   3. under the lock again, TakeWarmedSpare hands it back for the pool.
// Meanwhile the seed may drop its spares (DropWarmingSpares: let go of at
// publish) or end (KillWarmingSpares: killed, and never written into after,
// since their pids may go to other processes). Internal to sentry/sfork.
//
//   SV: under the fork lock, in MakeSpare:
//   PlanSpareDirtyPages(k, by_mm, spare, warm);
//   if (warm != nullptr && !warm->jobs.empty()) HoldForWarming(std::move(spare), *warm);
#ifndef SEEDVISOR_SENTRY_SFORK_SPARE_WARMING_H_
#define SEEDVISOR_SENTRY_SFORK_SPARE_WARMING_H_

#include <sys/types.h>

#include <optional>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/sfork/sfork.h"
#include "sentry/sfork/spares.h"

namespace seedvisor::sentry {

// Names `spare`'s stub copies and their prebreakable ranges to its anchor
// and, with `warm`, puts in it what to write ahead in them: what the last
// forks that reported wrote. Under the fork lock.
void PlanSpareDirtyPages(Kernel& k, const TasksByMm& by_mm, const Spare& spare,
                         SpareWarmup* warm);

// Keeps `spare` until it is warmed (warm.anchor names it from here on).
// Under the fork lock.
void HoldForWarming(Spare spare, SpareWarmup& warm);

// A spare back from warming: `dropped` if the seed dropped its spares
// meanwhile (it is to be let go of, not pooled).
struct WarmedSpare {
  Spare spare;
  bool dropped = false;
};
// Takes the warming spare of `anchor`, or nothing if there is none. Under
// the fork lock.
std::optional<WarmedSpare> TakeWarmedSpare(pid_t anchor);

// The seed drops its spares: those being warmed are let go of once warmed.
// Under the fork lock.
void DropWarmingSpares();

// At the end of the sandbox: kills every warming spare's group (never while
// WarmForkSpare writes into it, nor written into after) and adds each
// anchor to `groups`. Under the fork lock.
void KillWarmingSpares(std::vector<pid_t>* groups);

// In a forked sentry, on its only thread: the seed's warming spares and its
// learned pages are not ours.
void LetGoOfWarmingInForkChild();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_SPARE_WARMING_H_
