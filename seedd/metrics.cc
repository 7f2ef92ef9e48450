#include "seedd/metrics.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace seedvisor::seedd {
namespace {

std::string Labels(const std::vector<std::pair<std::string, std::string>>& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", labels[i].first, "=\"", EscapeLabelValue(labels[i].second), "\"");
  }
  return out + "}";
}

// Integers print without a fraction; fractions keep 9 significant digits.
std::string Number(double v) { return absl::StrFormat("%.9g", v); }

}  // namespace

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Metrics::ObserveCall(const std::string& function, int code,
                          const std::vector<std::pair<std::string, absl::Duration>>& phases,
                          absl::Duration total) {
  absl::MutexLock l(&mu_);
  ++calls_[{function, code}];
  auto observe = [&](const std::string& phase, absl::Duration d) {
    double s = absl::ToDoubleSeconds(d);
    Histogram& h = phases_[phase];
    auto it = std::lower_bound(kLatencyBuckets.begin(), kLatencyBuckets.end(), s);
    if (it != kLatencyBuckets.end()) ++h.buckets[it - kLatencyBuckets.begin()];
    ++h.count;
    h.sum += s;
  };
  for (const auto& [phase, d] : phases) observe(phase, d);
  observe("total", total);
}

std::string Metrics::Render(const std::vector<Sample>& samples) const {
  std::string out;
  {
    absl::MutexLock l(&mu_);
    out +=
        "# HELP seedd_invoke_phase_seconds Time of each phase of POST /invoke (fork: the instance "
        "forked from its seed; run: request in, reply out; destroy; total: the whole request).\n"
        "# TYPE seedd_invoke_phase_seconds histogram\n";
    for (const auto& [phase, h] : phases_) {
      uint64_t cum = 0;
      for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        cum += h.buckets[i];
        absl::StrAppend(&out, "seedd_invoke_phase_seconds_bucket",
                        Labels({{"phase", phase}, {"le", Number(kLatencyBuckets[i])}}), " ", cum, "\n");
      }
      absl::StrAppend(&out, "seedd_invoke_phase_seconds_bucket", Labels({{"phase", phase}, {"le", "+Inf"}}),
                      " ", h.count, "\n");
      absl::StrAppend(&out, "seedd_invoke_phase_seconds_sum", Labels({{"phase", phase}}), " ",
                      Number(h.sum), "\n");
      absl::StrAppend(&out, "seedd_invoke_phase_seconds_count", Labels({{"phase", phase}}), " ",
                      h.count, "\n");
    }
    out +=
        "# HELP seedd_invocations_total Calls of POST /invoke by function and HTTP status code.\n"
        "# TYPE seedd_invocations_total counter\n";
    for (const auto& [key, n] : calls_) {
      absl::StrAppend(&out, "seedd_invocations_total",
                      Labels({{"function", key.first}, {"code", absl::StrCat(key.second)}}), " ", n, "\n");
    }
  }
  // The caller's samples, one HELP/TYPE per family even when interleaved.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const Sample*>> by_family;
  for (const Sample& s : samples) {
    if (!by_family.contains(s.name)) order.push_back(s.name);
    by_family[s.name].push_back(&s);
  }
  for (const std::string& name : order) {
    const Sample& first = *by_family[name].front();
    absl::StrAppend(&out, "# HELP ", name, " ", first.help, "\n# TYPE ", name, " ", first.type, "\n");
    for (const Sample* s : by_family[name]) {
      absl::StrAppend(&out, name, Labels(s->labels), " ", Number(s->value), "\n");
    }
  }
  return out;
}

}  // namespace seedvisor::seedd
