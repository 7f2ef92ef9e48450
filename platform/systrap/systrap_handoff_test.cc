#include "platform/systrap/systrap_handoff.h"

#include <time.h>

#include "gtest/gtest.h"

namespace seedvisor::platform::systrap {
namespace {

constexpr uint64_t kMax = 32'000;

TEST(SpinPolicyTest, StartsSpinningTheFullBudget) {
  SpinPolicy p(kMax);
  EXPECT_EQ(p.NextBudget(), kMax);
}

TEST(SpinPolicyTest, QuickAnswersSetTheBudgetToTwiceTheirTime) {
  SpinPolicy p(kMax);
  for (int i = 0; i < 100; ++i) p.Record(p.NextBudget(), 2'000);
  // 2 x 2000 plus the floor (kMax / 32).
  EXPECT_EQ(p.NextBudget(), 2 * 2'000 + kMax / 32);
  // Never more than the maximum, however slow the (caught) answers.
  for (int i = 0; i < 100; ++i) p.Record(kMax, kMax);
  EXPECT_EQ(p.NextBudget(), kMax);
}

TEST(SpinPolicyTest, MissedAnswersStopTheSpin) {
  SpinPolicy p(kMax);
  p.Record(p.NextBudget(), 10 * kMax);
  EXPECT_EQ(p.budget(), kMax / 2);
  for (int i = 0; i < 10; ++i) p.Record(p.NextBudget(), 10 * kMax);
  EXPECT_EQ(p.budget(), 0u);
  EXPECT_EQ(p.NextBudget(), 0u);
}

TEST(SpinPolicyTest, AnAnswerALongerSpinWouldHaveCaughtKeepsTheSpin) {
  SpinPolicy p(kMax);
  for (int i = 0; i < 100; ++i) p.Record(p.NextBudget(), 200);
  const uint64_t budget = p.NextBudget();
  ASSERT_EQ(budget, 2 * 200 + kMax / 32);
  // One answer late by a tick's delay, still within the longest spin: the
  // spin lengthens for a while instead of stopping.
  p.Record(budget, kMax / 2);
  EXPECT_GT(p.budget(), budget);
  EXPECT_LE(p.budget(), kMax);
  // Quick answers bring it back down (to within the average's rounding).
  for (int i = 0; i < 100; ++i) p.Record(p.NextBudget(), 200);
  EXPECT_NEAR(p.NextBudget(), budget, 2 * 8);
  // Later than the longest spin: halved, and below the floor that is none.
  p.Record(p.NextBudget(), kMax + 1);
  EXPECT_EQ(p.budget(), 0u);
}

TEST(SpinPolicyTest, AWaitThatSleptAtOnceTeachesNothing) {
  SpinPolicy p(kMax);
  for (int i = 0; i < 10; ++i) p.Record(p.NextBudget(), 10 * kMax);
  const uint32_t interval = p.probe_interval();
  p.Record(0, 1);
  p.Record(0, 100 * kMax);
  EXPECT_EQ(p.budget(), 0u);
  EXPECT_EQ(p.probe_interval(), interval);
}

// Counts the waits until NextBudget() offers a spin again.
int WaitsUntilProbe(SpinPolicy& p) {
  for (int n = 1; n <= 100'000; ++n) {
    if (p.NextBudget() > 0) return n;
  }
  return -1;
}

TEST(SpinPolicyTest, ProbesBackOffWhileTheyFailAndComeBackWhenTheyCatch) {
  SpinPolicy p(kMax);
  while (p.budget() > 0) p.Record(p.NextBudget(), 10 * kMax);
  int first = WaitsUntilProbe(p);
  EXPECT_EQ(first, static_cast<int>(SpinPolicy::kMinProbeInterval));
  p.Record(kMax, 10 * kMax);  // the probe missed
  EXPECT_EQ(WaitsUntilProbe(p), 2 * first);
  p.Record(kMax, 10 * kMax);
  EXPECT_EQ(WaitsUntilProbe(p), 4 * first);
  for (int i = 0; i < 20; ++i) {
    WaitsUntilProbe(p);
    p.Record(kMax, 10 * kMax);
  }
  EXPECT_EQ(p.probe_interval(), SpinPolicy::kMaxProbeInterval);
  // A probe that catches its answer turns spinning back on.
  WaitsUntilProbe(p);
  p.Record(kMax, 1'000);
  EXPECT_GT(p.budget(), 0u);
  EXPECT_EQ(p.NextBudget(), p.budget());
}

TEST(SpinPolicyTest, PreemptionStopsTheSpinAndLengthensProbing) {
  SpinPolicy p(kMax);
  for (int i = 0; i < 10; ++i) p.Record(p.NextBudget(), 1'000);
  ASSERT_GT(p.budget(), 0u);
  p.Preempted();
  EXPECT_EQ(p.budget(), 0u);
  EXPECT_EQ(WaitsUntilProbe(p), static_cast<int>(2 * SpinPolicy::kMinProbeInterval));
  p.Preempted();
  p.Preempted();
  EXPECT_EQ(WaitsUntilProbe(p), static_cast<int>(8 * SpinPolicy::kMinProbeInterval));
}

TEST(SpinPolicyTest, ZeroMaximumNeverSpins) {
  SpinPolicy p(0);
  for (int i = 0; i < 10'000; ++i) {
    ASSERT_EQ(p.NextBudget(), 0u);
    p.Record(0, 5);
  }
}

TEST(SpinPolicyTest, ANewMaximumBoundsTheBudgetAndTheProbes) {
  SpinPolicy p(kMax);
  p.SetMax(kMax / 4);
  EXPECT_EQ(p.NextBudget(), kMax / 4);
  // Raised again, the budget grows only from caught answers.
  p.SetMax(4 * kMax);
  EXPECT_EQ(p.budget(), kMax / 4);
  for (int i = 0; i < 100; ++i) p.Record(p.NextBudget(), 3 * kMax);
  EXPECT_EQ(p.NextBudget(), 4 * kMax);
  // Stopped spinning, a probe spins the new maximum.
  p.SetMax(kMax);
  for (int i = 0; i < 10 && p.budget() > 0; ++i) p.Record(p.NextBudget(), 100 * kMax);
  ASSERT_EQ(p.budget(), 0u);
  uint64_t b = 0;
  for (int i = 0; i < 100'000 && b == 0; ++i) b = p.NextBudget();
  EXPECT_EQ(b, kMax);
}

TEST(WakeCostTest, TheCapIsThreeWakeupsWithinTheFloorAndTheCeiling) {
  WakeCost w;
  EXPECT_EQ(w.SpinCap(1'000, 100'000), 1'000u);  // nothing measured: the floor
  w.Record(10'000, 100'000);
  EXPECT_EQ(w.average(), 10'000u);
  EXPECT_EQ(w.SpinCap(1'000, 100'000), 3 * 10'000u);
  EXPECT_EQ(w.SpinCap(1'000, 20'000), 20'000u);
  EXPECT_EQ(w.SpinCap(50'000, 100'000), 50'000u);
  // A ceiling below the floor (SEEDVISOR_SYSTRAP_SPIN_US sets both): the floor.
  EXPECT_EQ(w.SpinCap(5'000, 0), 5'000u);
}

TEST(WakeCostTest, FollowsTheHostSlowlyAndIgnoresWhatCannotBeAWakeup) {
  WakeCost w;
  w.Record(40'000, 100'000);  // an idle vCPU
  w.Record(1'000'000, 100'000);  // above the ceiling: not a wakeup
  EXPECT_EQ(w.average(), 40'000u);
  w.Record(4'000, 100'000);  // one busy-host sample moves it by an eighth
  EXPECT_EQ(w.average(), 40'000u - 36'000u / 8);
  for (int i = 0; i < 100; ++i) w.Record(4'000, 100'000);
  EXPECT_LT(w.average(), 4'100u);
}

// The sentry's side of one thread whose stub always sleeps (each reply
// wakes it) and whose guest then runs `guest` ticks before its next
// syscall: the wait is a wakeup plus the guest's run.
uint64_t BudgetAfterPeerWokenWaits(uint64_t wake, uint64_t guest, int waits) {
  SpinPolicy p(kMax);
  for (int i = 0; i < waits; ++i) {
    const uint64_t budget = PeerWokenBudget(p.NextBudget(), wake, kMax);
    const uint64_t waited = wake + guest;
    if (PeerWokenWaitCounts(budget, waited, wake)) p.Record(budget, waited);
  }
  return p.budget();
}

TEST(PeerWokenTest, AGuestThatComputesLongStopsTheSpinThoughTheStubSlept) {
  // Each wait outlasts the spin by far more than a wakeup: spinning does
  // not pay, whatever the stub did (review of 81bc9b8: these misses were
  // never counted, and each syscall spun up to the ceiling for nothing).
  EXPECT_EQ(BudgetAfterPeerWokenWaits(kMax / 8, 100 * kMax, 20), 0u);
}

TEST(PeerWokenTest, AShortGuestKeepsTheSpinThatCoversTheStubsWakeup) {
  // The guest answers at once; the stub's wakeup is what the spin waits
  // out, and the extended spin catches it.
  EXPECT_GT(BudgetAfterPeerWokenWaits(kMax / 8, kMax / 100, 1000), 0u);
  EXPECT_EQ(PeerWokenBudget(kMax / 4, kMax / 8, kMax), kMax / 4 + kMax / 8);
  EXPECT_EQ(PeerWokenBudget(kMax, kMax / 8, kMax), kMax);
  EXPECT_EQ(PeerWokenBudget(0, kMax / 8, kMax), 0u);  // not spinning: no probe forced
}

TEST(PeerWokenTest, AMissWithinOneMoreWakeupCountsForNothing) {
  const uint64_t budget = 1'000, wake = 4'000;
  EXPECT_TRUE(PeerWokenWaitCounts(budget, 900, wake));     // caught
  EXPECT_FALSE(PeerWokenWaitCounts(budget, 4'500, wake));  // a slow wakeup
  EXPECT_TRUE(PeerWokenWaitCounts(budget, 5'500, wake));   // more than a wakeup late
}

TEST(TscTest, TicksPerNsMatchesTheClock) {
  const double r = TscTicksPerNs();
  ASSERT_GT(r, 0.0);
  timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  const uint64_t t0 = ReadTsc();
  timespec nap{0, 20'000'000};
  nanosleep(&nap, nullptr);
  const uint64_t t1 = ReadTsc();
  clock_gettime(CLOCK_MONOTONIC, &b);
  const double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
  const double measured = static_cast<double>(t1 - t0) / ns;
  EXPECT_NEAR(measured, r, r * 0.05);
}

TEST(PsiTest, ParsesTheSomeTotal) {
  EXPECT_EQ(ParsePsiSomeTotal("some avg10=33.63 avg60=71.91 avg300=76.27 total=8706598045\n"
                              "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
            8706598045);
  EXPECT_EQ(ParsePsiSomeTotal("full avg10=0.00 total=5\n"), -1);
  EXPECT_EQ(ParsePsiSomeTotal("some avg10=0.00\nfull total=5\n"), -1);
  EXPECT_EQ(ParsePsiSomeTotal("some total=x\n"), -1);
  EXPECT_EQ(ParsePsiSomeTotal(""), -1);
}

constexpr int64_t kMs = 1'000'000;

// Feeds readings 4 ms apart with `share` of each stalled; returns the gauge's answer.
bool Feed(ContentionGauge& g, int64_t& now, uint64_t& stall, double share, int n) {
  bool c = g.contended();
  for (int i = 0; i < n; ++i) {
    now += 4 * kMs;
    stall += static_cast<uint64_t>(share * 4'000);
    c = g.Update(now, stall);
  }
  return c;
}

TEST(ContentionGaugeTest, HighPressureIsContendedUntilItFallsBelowLow) {
  ContentionGauge g;
  int64_t now = 0;
  uint64_t stall = 0;
  EXPECT_FALSE(Feed(g, now, stall, 0.0, 5));
  EXPECT_FALSE(Feed(g, now, stall, 0.15, 5));  // between the marks: stays clear
  EXPECT_TRUE(Feed(g, now, stall, 0.5, 1));
  EXPECT_TRUE(Feed(g, now, stall, 0.15, 5));  // between the marks: stays contended
  EXPECT_FALSE(Feed(g, now, stall, 0.01, 1));
}

TEST(ContentionGaugeTest, FlappingHoldsTheContendedSpellLonger) {
  ContentionGauge g;
  int64_t now = 0;
  uint64_t stall = 0;
  Feed(g, now, stall, 0.0, 3);
  // Each time spinning comes back the pressure returns at once.
  int held_before = 0;
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(Feed(g, now, stall, 0.9, 1));
    int held = 0;
    while (Feed(g, now, stall, 0.0, 1)) ++held;
    EXPECT_GE(held, held_before);
    if (round > 0) {
      EXPECT_GT(held, 0);
    }
    held_before = held;
  }
  EXPECT_GE(held_before, 8);
  // Long quiet spells shrink the hold again.
  Feed(g, now, stall, 0.0, 10);
  ASSERT_TRUE(Feed(g, now, stall, 0.9, 1));
  int held = 0;
  while (Feed(g, now, stall, 0.0, 1)) ++held;
  EXPECT_LT(held, held_before);
}

TEST(ContentionGaugeTest, ACounterThatGoesBackIsARestart) {
  ContentionGauge g;
  EXPECT_FALSE(g.Update(0, 1'000'000));
  EXPECT_FALSE(g.Update(4 * kMs, 10));  // went back: no share computed
  EXPECT_TRUE(g.Update(8 * kMs, 10 + 3'000));
}

}  // namespace
}  // namespace seedvisor::platform::systrap
