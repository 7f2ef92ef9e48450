#include "netstack/shared/timer_wheel.h"

#include <algorithm>

namespace seedvisor::netstack {

Timer::~Timer() {
  if (wheel_) wheel_->Cancel(this);
}

TimerWheel::~TimerWheel() {
  for (Timer*& head : slots_) {
    while (head) Unlink(head);
  }
}

void TimerWheel::Link(Timer* t, int slot) {
  t->wheel_ = this;
  t->prev_ = nullptr;
  t->next_ = slots_[slot];
  if (t->next_) t->next_->prev_ = t;
  slots_[slot] = t;
  ++count_;
}

void TimerWheel::Unlink(Timer* t) {
  int slot = int((t->deadline_ns_ / kTickNs) % kSlots);
  if (t->prev_) {
    t->prev_->next_ = t->next_;
  } else {
    slots_[slot] = t->next_;
  }
  if (t->next_) t->next_->prev_ = t->prev_;
  t->prev_ = t->next_ = nullptr;
  t->wheel_ = nullptr;
  --count_;
}

void TimerWheel::Arm(Timer* t, int64_t deadline_ns) {
  if (t->wheel_) Unlink(t);
  // A deadline in the past fires at the next Advance(); one armed by a
  // callback while Advance() runs fires at the Advance() after it, so a
  // timer that re-arms itself "now" cannot loop forever.
  int64_t floor_ns = advancing_ ? (advance_target_tick_ + 1) * kTickNs : now_tick_ * kTickNs;
  deadline_ns = std::max(deadline_ns, floor_ns);
  t->deadline_ns_ = deadline_ns;
  Link(t, int((deadline_ns / kTickNs) % kSlots));
}

void TimerWheel::Cancel(Timer* t) {
  if (t->wheel_ == this) Unlink(t);
}

void TimerWheel::Advance(int64_t now_ns) {
  int64_t target = now_ns / kTickNs;
  if (target < now_tick_ || advancing_) return;
  advancing_ = true;
  advance_target_tick_ = target;
  // Visit each slot at most once: after a jump longer than the wheel, the
  // first kSlots ticks cover every slot.
  int64_t last = std::min(target, now_tick_ + kSlots - 1);
  for (int64_t tick = now_tick_; tick <= last; ++tick) {
    int slot = int(tick % kSlots);
    // One due timer at a time, rescanning from the head: a callback may
    // cancel, destroy or re-arm any timer, including others in this slot.
    for (;;) {
      Timer* t = slots_[slot];
      while (t && t->deadline_ns_ > now_ns) t = t->next_;
      if (!t) break;
      Unlink(t);
      t->fn_();
    }
  }
  now_tick_ = target;
  advancing_ = false;
}

int64_t TimerWheel::NextDeadline() const {
  int64_t best = -1;
  for (Timer* const head : slots_) {
    for (Timer* t = head; t; t = t->next_) {
      if (best < 0 || t->deadline_ns_ < best) best = t->deadline_ns_;
    }
  }
  return best;
}

}  // namespace seedvisor::netstack
