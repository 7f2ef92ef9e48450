// RuntimeSeeds' copies of a seed: which one a fork takes, what a failed
// fork does to it, and the maintenance thread's replicas made when forks
// queue up and dropped when idle (see runtime_seeds.h).
#include "seedd/runtime_seeds.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "fri/status_macros.h"

namespace seedvisor::seedd {

std::vector<std::string> RuntimeSeeds::Ids(const Seed& s) {
  std::vector<std::string> out;  // replicas first, then the original they were forked from
  for (auto it = s.copies.rbegin(); it != s.copies.rend(); ++it) out.push_back((*it)->id);
  return out;
}

RuntimeSeeds::Seed* RuntimeSeeds::Find(const std::string& function) {
  if (function.empty()) return l1_.copies.empty() ? nullptr : &l1_;
  auto it = l2_.find(function);
  return it == l2_.end() ? nullptr : &it->second;
}

std::shared_ptr<RuntimeSeeds::Copy> RuntimeSeeds::Pick(Seed& seed, const std::string& exclude) {
  std::shared_ptr<Copy> best;
  auto better = [&](const std::shared_ptr<Copy>& c) {
    if (best == nullptr) return true;
    if (c->unhealthy != best->unhealthy) return !c->unhealthy;
    return c->forking < best->forking;
  };
  for (const std::shared_ptr<Copy>& c : seed.copies) {
    if (!exclude.empty() && (c->id == exclude || c->unhealthy)) continue;
    if (better(c)) best = c;
  }
  if (best == nullptr) return nullptr;
  if (best->forking > 0) {  // every copy is forking: this fork queues
    ++seed.queued;
    const int room = ropts_.max_replicas - static_cast<int>(seed.copies.size()) - seed.replicating;
    if (seed.want_replicas < room) {
      ++seed.want_replicas;
      wake_ = true;
      changed_.SignalAll();
    }
  }
  ++best->forking;
  best->last_used = MonotonicNow();
  return best;
}

void RuntimeSeeds::ForkFailed(const std::shared_ptr<Copy>& copy, const std::string& function,
                              const absl::Status& why) {
  const bool timed_out = absl::IsDeadlineExceeded(why);
  std::vector<std::string> destroy;
  std::string did = "kept";
  {
    absl::MutexLock l(&mu_);
    Seed* s = Find(function);
    auto in = [&](const Seed& seed) {
      return std::find(seed.copies.begin(), seed.copies.end(), copy) != seed.copies.end();
    };
    if (s != nullptr && in(*s)) {
      if (copy != s->copies[0]) {
        std::erase(s->copies, copy);
        ++s->dropped;
        destroy.push_back(copy->id);
        did = "destroyed (a replica)";
      } else if (timed_out && !function.empty()) {
        destroy = Ids(*s);
        l2_.erase(function);
        did = "evicted with its replicas: its function forks from level 1 until it is promoted again";
      } else if (function.empty()) {
        // Stuck, or gone (its sandbox killed): either way a new one.
        copy->unhealthy = true;
        if (!l1_reboot_) {
          l1_reboot_ = true;
          wake_ = true;
          changed_.SignalAll();
        }
        did = absl::StrCat(timed_out ? "stuck" : "failing", ": a new level-", opts_.level,
                           " seed is booted to replace it; its replicas",
                           l0_ != nullptr ? " (or the level-0 seed)" : "", " serve meanwhile");
      } else {
        copy->unhealthy = true;  // an L2 original: its replicas serve first
        did = "marked unhealthy: its replicas serve first";
      }
    }
  }
  std::fprintf(stderr, "seedd: a fork of seed \"%s\" failed (%s); the seed is %s\n", copy->id.c_str(),
               std::string(why.message()).c_str(), did.c_str());
  for (const std::string& id : destroy) sb_.Destroy(id).IgnoreError();
}

void RuntimeSeeds::Release(const std::shared_ptr<Copy>& c) {
  absl::MutexLock l(&mu_);
  --c->forking;
  c->last_used = MonotonicNow();
}

void RuntimeSeeds::MakeReplica(std::string function, std::string original, std::string id) {
  absl::Duration t0 = MonotonicNow();
  absl::StatusOr<Channel> ch = Channel::Make();
  absl::Status st = ch.status();
  if (ch.ok()) {
    fri::v1::ForkRequest fr;
    fr.set_seed_id(original);
    fr.set_new_id(id);
    fr.set_paused(true);  // a child seed: its guest never runs but to be forked
    *fr.mutable_stdio() = StdioFor(*ch, opts_.log_path);
    absl::StatusOr<fri::v1::SandboxInfo> info = absl::NotFoundError("");
    const fri::v1::ListResponse list = sb_.List();  // outlives the loop
    for (const auto& s : list.sandboxes()) {
      if (s.id() == original) info = s;
    }
    if (info.ok()) *fr.mutable_labels() = info->labels();
    (*fr.mutable_labels())["replica_of"] = original;
    st = sb_.Fork(fr).status();
    ch->CloseFarEnds();
  }
  bool keep = false;
  {
    absl::MutexLock l(&mu_);
    Seed* s = Find(function);
    if (s != nullptr && s->id() == original) {
      --s->replicating;
      if (st.ok() && !stopping_) {
        s->copies.push_back(
            std::make_shared<Copy>(Copy{id, std::make_unique<Channel>(std::move(*ch)), 0, MonotonicNow()}));
        ++s->made;
        keep = true;
      }
    }
  }
  if (!st.ok()) {
    std::fprintf(stderr, "seedd: a replica of seed \"%s\" failed: %s\n", original.c_str(),
                 std::string(st.message()).c_str());
  } else if (!keep) {
    sb_.Destroy(id).IgnoreError();  // its seed was dropped meanwhile
  } else {
    std::fprintf(stderr, "seedd: forks of \"%s\" queue up: replica \"%s\" made in %.0f ms\n",
                 original.c_str(), id.c_str(), absl::ToDoubleMilliseconds(MonotonicNow() - t0));
  }
}

void RuntimeSeeds::DropIdle() {
  for (;;) {
    std::vector<std::array<std::string, 3>> make;  // function, original, new id
    std::vector<std::string> drop;
    bool reboot = false;
    {
      absl::MutexLock l(&mu_);
      auto woken = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return wake_ || stopping_; };
      changed_.Await(&mu_, absl::Condition(&woken), Deadline::In(absl::Milliseconds(250)));
      if (stopping_) return;
      wake_ = false;
      reboot = l1_reboot_;  // cleared by RebootL1 when it is done
      absl::Duration now = MonotonicNow();
      auto visit = [&](const std::string& function, Seed& s) {
        for (; s.want_replicas > 0; --s.want_replicas) {
          ++s.replicating;
          make.push_back({function, s.id(), absl::StrCat(s.id(), "-r", s.next_replica++)});
        }
        std::erase_if(s.copies, [&](const std::shared_ptr<Copy>& c) {
          if (c->id == s.id() || c->forking > 0 || now - c->last_used < ropts_.replica_idle) return false;
          drop.push_back(c->id);
          ++s.dropped;
          return true;
        });
      };
      if (!l1_.copies.empty()) visit("", l1_);
      for (auto& [name, s] : l2_) visit(name, s);
    }
    if (reboot) RebootL1();
    for (const std::string& id : drop) sb_.Destroy(id).IgnoreError();
    // Forks of one seed overlap: the replicas wanted are made at once, up to
    // the host's CPUs at a time.
    const size_t at_once = std::max(1u, std::thread::hardware_concurrency());
    for (size_t i = 0; i < make.size(); i += at_once) {
      std::vector<std::thread> makers;
      for (size_t j = i; j < std::min(make.size(), i + at_once); ++j) {
        try {
          makers.emplace_back([this, &m = make[j]] { MakeReplica(m[0], m[1], m[2]); });
        } catch (const std::system_error&) {
          MakeReplica(make[j][0], make[j][1], make[j][2]);  // no thread to spare: here
        }
      }
      for (std::thread& t : makers) t.join();
    }
  }
}

std::vector<SeedLoad> RuntimeSeeds::Loads() {
  absl::MutexLock l(&mu_);
  std::vector<SeedLoad> out;
  auto add = [&](const Seed& s) {
    SeedLoad x{.seed = s.id(), .copies = static_cast<int>(s.copies.size()), .forking = 0,
               .queued_forks = s.queued, .replicas_made = s.made, .replicas_dropped = s.dropped};
    for (const auto& c : s.copies) x.forking += c->forking;
    out.push_back(x);
  };
  if (!l1_.copies.empty()) add(l1_);
  for (const auto& [name, s] : l2_) add(s);
  return out;
}

}  // namespace seedvisor::seedd
