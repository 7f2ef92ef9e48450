#include "sentry/control/fork_watch.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace seedvisor::control {

ForkWatch::ForkWatch(std::function<absl::Duration()> now) : now_(std::move(now)) {}

ForkWatch::Token ForkWatch::Begin(std::string who) {
  const absl::Duration t = now_();
  absl::MutexLock l(&mu_);
  const Token token = next_++;
  entries_[token] = Entry{.who = std::move(who), .since = t};
  return token;
}

void ForkWatch::Step(Token t, const char* step) {
  const absl::Duration now = now_();
  absl::MutexLock l(&mu_);
  auto it = entries_.find(t);
  if (it == entries_.end()) return;
  it->second.step = step;
  it->second.since = now;
  it->second.reported = false;
}

void ForkWatch::End(Token t) {
  absl::MutexLock l(&mu_);
  entries_.erase(t);
  if (holder_ == t) holder_ = 0;
}

void ForkWatch::Locked(Token t) {
  const absl::Duration now = now_();
  absl::MutexLock l(&mu_);
  holder_ = t;
  held_since_ = now;
}

void ForkWatch::Unlocked() {
  absl::MutexLock l(&mu_);
  holder_ = 0;
}

std::vector<std::string> ForkWatch::Stalled(absl::Duration stall) {
  const absl::Duration now = now_();
  absl::MutexLock l(&mu_);
  std::vector<std::string> out;
  std::string lock = "free";
  if (holder_ != 0) {
    auto h = entries_.find(holder_);
    lock = absl::StrCat("held by ", h != entries_.end() ? h->second.who : "?", " for ",
                        absl::FormatDuration(absl::Trunc(now - held_since_, absl::Milliseconds(1))));
    if (h != entries_.end()) absl::StrAppend(&lock, ", which is ", h->second.step);
  }
  for (auto& [token, e] : entries_) {
    if (e.reported || now - e.since < stall) continue;
    e.reported = true;
    out.push_back(absl::StrCat(
        e.who, " has been ", e.step, " for ",
        absl::FormatDuration(absl::Trunc(now - e.since, absl::Milliseconds(1))), "; the fork lock is ",
        lock, "; ", entries_.size(), " in flight"));
  }
  return out;
}

}  // namespace seedvisor::control
