// UnixSocket: releasing sockets that hold sockets (iteratively) and
// collecting cycles of them (unix_gc()).
#include <map>
#include <set>
#include <vector>

#include "sentry/socket/unix_socket.h"
#include "sentry/socket/unix_socket_internal.h"

namespace seedvisor::sentry {

using namespace unix_internal;  // NOLINT

namespace unix_internal {

std::set<UnixSocket*>& Registry() {
  static auto* all = new std::set<UnixSocket*>;
  return *all;
}

namespace {
// The loop Reap runs on this thread, if any.
thread_local std::vector<FileRef>* pending = nullptr;
}  // namespace

bool Reaping() { return pending != nullptr; }

void Reap(std::vector<FileRef> g) {
  if (pending != nullptr) {
    for (FileRef& f : g) pending->push_back(std::move(f));
    return;
  }
  std::vector<FileRef> work = std::move(g);
  pending = &work;
  while (!work.empty()) {
    FileRef f = std::move(work.back());
    work.pop_back();
    f.reset();
  }
  pending = nullptr;
}

}  // namespace unix_internal

// ---- Cycles ----

void UnixSocket::CollectLocked(Graveyard& g) {
  // The references queues hold, and each socket's queued sockets.
  std::map<UnixSocket*, long> queued;
  std::map<UnixSocket*, std::vector<UnixSocket*>> holds;
  for (UnixSocket* s : Registry()) {
    for (const Message& m : s->rcvq_) {
      for (const FileRef& f : m.files) {
        if (auto* u = dynamic_cast<UnixSocket*>(f.get())) {
          ++queued[u];
          holds[s].push_back(u);
        }
      }
    }
    for (const auto& e : s->acceptq_) {
      ++queued[e.get()];
      holds[s].push_back(e.get());
    }
  }
  // Held from outside the queues: roots. Then what they hold, and so on.
  std::set<UnixSocket*> live;
  std::vector<UnixSocket*> todo;
  for (UnixSocket* s : Registry()) {
    long refs = s->weak_from_this().use_count();
    if (refs > 0 && refs > queued[s] && live.insert(s).second) todo.push_back(s);
  }
  while (!todo.empty()) {
    UnixSocket* s = todo.back();
    todo.pop_back();
    for (UnixSocket* u : holds[s]) {
      if (live.insert(u).second) todo.push_back(u);
    }
  }
  for (UnixSocket* s : Registry()) {
    if (live.count(s) || s->weak_from_this().use_count() == 0 || !queued.count(s)) continue;
    for (Message& m : s->rcvq_) s->UnchargeLocked(m, g);
    s->rcvq_.clear();
    InFlight() -= s->acceptq_.size();
    for (auto& e : s->acceptq_) g.push_back(std::move(e));
    s->acceptq_.clear();
  }
}

}  // namespace seedvisor::sentry
