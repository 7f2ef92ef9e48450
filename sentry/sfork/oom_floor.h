// The floor for a sandbox's fork anchors' oom_score_adj. A fork's anchor
// is never the OOM killer's victim (spares.cc, KeepFromOomKiller): the
// sentry writes -1000 into it after it dropped CAP_SYS_RESOURCE, which
// works only down to the floor a holder of that capability last wrote for
// the process (signal->oom_score_adj_min, __set_oom_adj()), which a fork
// inherits. So a sentry sets that floor to -1000 while it still holds the
// capability, and goes back to its own value once it has dropped it: its
// own value and the OOM killer's view of it are as before.
//
//   OwnOomScoreAdj own = LowerOomFloorForAnchors();  // with CAP_SYS_RESOURCE
//   DropCapabilities();
//   RestoreOwnOomScoreAdj(own);                      // without it
//
// Without the capability (rootless; a host that withholds it from root)
// both do nothing, and the anchors keep the sentry's value.
#ifndef SEEDVISOR_SENTRY_SFORK_OOM_FLOOR_H_
#define SEEDVISOR_SENTRY_SFORK_OOM_FLOOR_H_

#include <string>

namespace seedvisor::sentry {

struct OwnOomScoreAdj {
  std::string value;  // as /proc/self/oom_score_adj read before; empty: nothing lowered
};

OwnOomScoreAdj LowerOomFloorForAnchors();
void RestoreOwnOomScoreAdj(const OwnOomScoreAdj& own);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_OOM_FLOOR_H_
