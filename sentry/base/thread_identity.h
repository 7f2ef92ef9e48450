// Abseil's per-thread identity, made when a thread starts rather than when it
// first blocks, for a process that is host-forked while it runs threads (a
// seed's sentry, sentry/sfork).
//
// A thread's first blocking absl::Mutex/CondVar operation (a contended Lock,
// an Await or Wait) allocates its ThreadIdentity: from abseil's process-wide
// freelist under one static SpinLock, or, when that is empty, from the
// LowLevelAlloc default arena under another. A host fork at that moment
// copies the lock held into the child, whose new threads then wait for it
// forever when they allocate their own. That was issue 9's hung fork of a
// replica: a Fork handler of the replica blocking for the first time on its
// fork lock, on a thread that had never blocked, while another Fork of the
// same replica host-forked it; the forked sentry's first task thread waited
// forever on the arena's lock word (abseil's default_arena_storage, value 9:
// held, with a sleeper).
//
// So every host thread the sentry makes (HostThread, ServiceThread, the ttrpc
// WorkerPool) calls this first, inside the window in which it counts as
// starting, which no host fork overlaps (the seed's service threads are
// parked, its guest threads quiesced, and the control server's pool starts
// no thread under a ForkHold). A thread that has its identity never takes
// those locks again until it exits (ReclaimThreadIdentity at thread exit
// takes the freelist's lock: no thread ends across a fork either).
#ifndef SEEDVISOR_SENTRY_BASE_THREAD_IDENTITY_H_
#define SEEDVISOR_SENTRY_BASE_THREAD_IDENTITY_H_

#include "absl/base/internal/thread_identity.h"
#include "absl/synchronization/internal/create_thread_identity.h"

namespace seedvisor::sentry {

// Makes the calling thread's abseil identity now, if it has none.
inline void MakeThreadIdentityNow() { absl::synchronization_internal::GetOrCreateCurrentThreadIdentity(); }

// Whether the calling thread has one (tests).
inline bool HasThreadIdentity() {
  return absl::base_internal::CurrentThreadIdentityIfPresent() != nullptr;
}

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_BASE_THREAD_IDENTITY_H_
