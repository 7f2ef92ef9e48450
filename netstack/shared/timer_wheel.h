// A hashed timer wheel (Varghese & Lauck, scheme 6) with 1 ms ticks: every
// protocol timer of a stack (retransmission, TIME_WAIT, ARP retries,
// reassembly expiry) is a Timer linked into one of 512 slots. Arming,
// cancelling and expiring are O(1); Advance() visits the slots between the
// last tick and now (all of them at most once, however far time jumped).
//
// The wheel does no locking and starts no thread: its owner (the Stack)
// calls Advance() under its lock from whatever thread drives it, so a host
// fork copies the wheel as plain data.
//
//   Timer t([&] { Retransmit(); });
//   wheel.Arm(&t, now + rto);
//   wheel.Advance(now);      // runs callbacks that are due
#ifndef SEEDVISOR_NETSTACK_SHARED_TIMER_WHEEL_H_
#define SEEDVISOR_NETSTACK_SHARED_TIMER_WHEEL_H_

#include <cstdint>
#include <functional>

namespace seedvisor::netstack {

class TimerWheel;

// One timer; unlinks itself from its wheel when destroyed.
class Timer {
 public:
  explicit Timer(std::function<void()> fn) : fn_(std::move(fn)) {}
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  bool armed() const { return wheel_ != nullptr; }
  int64_t deadline_ns() const { return deadline_ns_; }

 private:
  friend class TimerWheel;
  std::function<void()> fn_;
  TimerWheel* wheel_ = nullptr;
  Timer* prev_ = nullptr;
  Timer* next_ = nullptr;
  int64_t deadline_ns_ = 0;
};

class TimerWheel {
 public:
  static constexpr int kSlots = 512;
  static constexpr int64_t kTickNs = 1'000'000;

  explicit TimerWheel(int64_t now_ns = 0) : now_tick_(now_ns / kTickNs) {}
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // (Re)arms `t` to fire at the first Advance() at or after `deadline_ns`.
  void Arm(Timer* t, int64_t deadline_ns);
  void Cancel(Timer* t);
  // Runs the callbacks of every timer due by `now_ns`, earliest slot first.
  // A callback may arm or cancel any timer, itself included.
  void Advance(int64_t now_ns);
  // The earliest deadline of an armed timer, or -1 if none. O(slots + n) in
  // the worst case; the driver calls it once per wakeup.
  int64_t NextDeadline() const;
  size_t armed_count() const { return count_; }

 private:
  void Link(Timer* t, int slot);
  void Unlink(Timer* t);
  Timer* slots_[kSlots] = {};
  int64_t now_tick_;
  size_t count_ = 0;
  bool advancing_ = false;
  int64_t advance_target_tick_ = 0;
};

}  // namespace seedvisor::netstack

#endif  // SEEDVISOR_NETSTACK_SHARED_TIMER_WHEEL_H_
