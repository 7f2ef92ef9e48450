// seedd's Prometheus metrics (GET /metrics, text exposition format 0.0.4):
// what the invoke path counts as it goes, rendered with the gauges the
// caller samples at scrape time (seed memory, live instances, pool levels).
//
//   Metrics m;
//   m.ObserveCall("hello", 200, {{"fork", f}, {"run", r}, {"destroy", d}}, total);
//   std::string text = m.Render({Gauge{"seedd_live_instances", "...", {}, 3}});
//
//   seedd_invoke_phase_seconds{phase}   histogram: fork, run, destroy, total
//   seedd_invocations_total{function,code}   counter
// Thread-safe.
#ifndef SEEDVISOR_SEEDD_METRICS_H_
#define SEEDVISOR_SEEDD_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace seedvisor::seedd {

// One sample of a metric family the caller computes at scrape time.
struct Sample {
  std::string name;  // family name, e.g. "seedd_seed_pss_bytes"
  std::string help;
  std::string type;  // "gauge" or "counter"
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

// Upper bounds of the latency buckets, in seconds (then +Inf).
inline constexpr std::array<double, 14> kLatencyBuckets = {
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30};

class Metrics {
 public:
  // A finished call of `function` answered `code`; phases as Server-Timing has them.
  void ObserveCall(const std::string& function, int code,
                   const std::vector<std::pair<std::string, absl::Duration>>& phases,
                   absl::Duration total);
  // Everything observed, then `samples` grouped by family (in first-seen order).
  std::string Render(const std::vector<Sample>& samples) const;

 private:
  struct Histogram {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // non-cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  mutable absl::Mutex mu_;
  std::map<std::string, Histogram> phases_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int>, uint64_t> calls_ ABSL_GUARDED_BY(mu_);
};

// A label value escaped for the text format (\\, \" and \n).
std::string EscapeLabelValue(const std::string& v);

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_METRICS_H_
