// UnixSocket: releasing sockets that hold sockets (iteratively) and
// collecting cycles of them (unix_gc()).
#include <unordered_map>
#include <vector>

#include "sentry/socket/unix_socket.h"
#include "sentry/socket/unix_socket_internal.h"

namespace seedvisor::sentry {

using namespace unix_internal;  // NOLINT

namespace unix_internal {

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
  // The sockets that may be garbage: those queued as files and the embryos
  // of such listeners, each with the references its queuing accounts for.
  // A socket nothing else holds than those queues is a candidate (Linux's
  // unix_gc() before 6.10: file count == inflight count). Work is in the
  // number of sockets in flight, never in the number of sockets.
  struct Node {
    long queued = 0;  // references from receive and accept queues
    long inner = 0;   // of those, from queues of candidates
    bool candidate = false;
    bool live = false;
  };
  std::unordered_map<UnixSocket*, Node> nodes;
  nodes.reserve(Passed().size() * 2);
  for (const auto& [s, n] : Passed()) nodes[s].queued += static_cast<long>(n);
  for (const auto& [s, n] : Passed()) {
    for (const auto& e : s->acceptq_) ++nodes[e.get()].queued;
  }
  std::vector<UnixSocket*> candidates;
  for (auto& [s, node] : nodes) {
    node.candidate = s->weak_from_this().use_count() == node.queued;
    if (node.candidate) candidates.push_back(s);
  }
  // What each candidate's queues hold, among the candidates.
  auto each_held = [&nodes](UnixSocket* s, auto&& fn) {
    for (const Message& m : s->rcvq_) {
      if (m.sockets == 0) continue;
      for (const FileRef& f : m.files) {
        auto* u = dynamic_cast<UnixSocket*>(f.get());
        if (u == nullptr) continue;
        auto it = nodes.find(u);
        if (it != nodes.end() && it->second.candidate) fn(u, it->second);
      }
    }
    for (const auto& e : s->acceptq_) {
      auto it = nodes.find(e.get());
      if (it != nodes.end() && it->second.candidate) fn(e.get(), it->second);
    }
  };
  for (UnixSocket* s : candidates) each_held(s, [](UnixSocket*, Node& n) { ++n.inner; });
  // Held from outside the candidates' queues: live, and so is all they hold.
  std::vector<UnixSocket*> todo;
  for (UnixSocket* s : candidates) {
    Node& n = nodes[s];
    if (n.inner < n.queued) {
      n.live = true;
      todo.push_back(s);
    }
  }
  while (!todo.empty()) {
    UnixSocket* s = todo.back();
    todo.pop_back();
    each_held(s, [&todo](UnixSocket* u, Node& n) {
      if (!n.live) {
        n.live = true;
        todo.push_back(u);
      }
    });
  }
  for (UnixSocket* s : candidates) {
    if (nodes[s].live) continue;
    for (Message& m : s->rcvq_) s->UnchargeLocked(m, g);
    s->rcvq_.clear();
    for (auto& e : s->acceptq_) g.push_back(std::move(e));
    s->acceptq_.clear();
  }
}

}  // namespace seedvisor::sentry
