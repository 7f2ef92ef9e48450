#include "seedd/gateway.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"
#include "sentry/base/mono_clock.h"

namespace seedvisor::seedd {
namespace {

HttpResponse Json(int code, const nlohmann::json& j) {
  HttpResponse r;
  r.code = code;
  // replace: a message may quote a client's bytes that are not UTF-8 (dump would throw).
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return r;
}

std::string ServerTiming(const CallResult& c, absl::Duration total) {
  std::string out;
  for (const auto& [name, d] : c.phases) {
    absl::StrAppendFormat(&out, "%s;dur=%.3f, ", name, absl::ToDoubleMilliseconds(d));
  }
  absl::StrAppendFormat(&out, "total;dur=%.3f", absl::ToDoubleMilliseconds(total));
  // The start path: which level the instance was forked from.
  if (c.level >= 0) absl::StrAppendFormat(&out, ", path;desc=\"L%d\"", c.level);
  return out;
}

}  // namespace

HttpResponse Gateway::Handle(const HttpRequest& req) {
  absl::string_view path = req.path;
  if (absl::ConsumePrefix(&path, "/functions/")) {
    if (req.method != "PUT") return ErrorResponse(405, "use PUT /functions/NAME to deploy");
    return Deploy(std::string(path), req.body);
  }
  if (absl::ConsumePrefix(&path, "/invoke/")) {
    if (req.method != "POST") return ErrorResponse(405, "use POST /invoke/NAME with a JSON event");
    return Invoke(std::string(path), req.body);
  }
  if (path == "/functions") {
    if (req.method != "GET") return ErrorResponse(405, "use GET /functions");
    return ListFunctions();
  }
  if (path == "/seeds") {
    if (req.method != "GET") return ErrorResponse(405, "use GET /seeds");
    return ListSeeds();
  }
  if (path == "/metrics") {
    if (req.method != "GET") return ErrorResponse(405, "use GET /metrics");
    return RenderMetrics();
  }
  return ErrorResponse(404, absl::StrCat("no route for ", req.path,
                                         " (PUT /functions/NAME, POST /invoke/NAME, GET /functions, "
                                         "GET /seeds, GET /metrics)"));
}

RuntimeSeeds* Gateway::RuntimeFor(const Function& f) const {
  auto it = runtimes_.find(f.runtime);
  return it == runtimes_.end() ? nullptr : it->second;
}

HttpResponse Gateway::Deploy(const std::string& name, const std::string& body) {
  absl::StatusOr<Function> f = ParseDeploy(name, body);
  if (!f.ok()) return ErrorResponse(400, f.status().message());
  if (RuntimeFor(*f) == nullptr) {
    return ErrorResponse(400, absl::StrCat("runtime: \"", f->runtime,
                                           "\" has no seed on this node (seedd could not boot it)"));
  }
  std::shared_ptr<const Function> old = functions_.Get(name);
  absl::StatusOr<std::shared_ptr<const Function>> put = functions_.Put(std::move(*f));
  if (!put.ok()) return ErrorResponse(500, put.status().message());
  std::shared_ptr<const Function> stored = *put;
  RuntimeFor(*stored)->DropOldL2(stored->name, stored->version);
  if (old != nullptr && old->runtime != stored->runtime) {
    RuntimeFor(*old)->DropOldL2(stored->name, stored->version);
  }
  return Json(201, {{"name", stored->name}, {"version", stored->version}});
}

HttpResponse Gateway::Invoke(const std::string& name, const std::string& body) {
  const absl::Duration t0 = sentry::MonotonicNow();
  CallResult c;
  HttpResponse r = InvokeUncounted(name, body, c);
  absl::Duration total = sentry::MonotonicNow() - t0;
  // An unknown name counts as "": clients must not grow the label set.
  metrics_.ObserveCall(r.code == 404 ? "" : name, r.code, c.phases, total);
  if (r.code != 404) {
    r.headers.emplace_back("Server-Timing", ServerTiming(c, total));
    r.headers.emplace_back("X-Seedd-Seed", c.seed);
  }
  return r;
}

HttpResponse Gateway::InvokeUncounted(const std::string& name, const std::string& body, CallResult& c) {
  std::shared_ptr<const Function> fn = functions_.Get(name);
  if (fn == nullptr) return ErrorResponse(404, absl::StrCat("no function \"", name, "\" is deployed"));
  std::string event = absl::StripAsciiWhitespace(body).empty() ? "null" : body;
  if (!nlohmann::json::accept(event)) return ErrorResponse(400, "the event (request body) is not valid JSON");
  absl::Duration timeout = fn->timeout > absl::ZeroDuration() ? fn->timeout : opts_.timeout;
  RuntimeSeeds* rt = RuntimeFor(*fn);
  if (rt == nullptr) {  // deployed before a restart that could not boot its runtime
    return ErrorResponse(503, absl::StrCat("runtime \"", fn->runtime, "\" of function \"", name,
                                           "\" has no seed on this node (seedd could not boot it)"));
  }
  c = rt->Call(*fn, event, timeout);
  HttpResponse r;
  if (!c.status.ok()) {
    switch (c.status.code()) {
      case absl::StatusCode::kDeadlineExceeded:
        r = ErrorResponse(504, absl::StrFormat("function \"%s\" did not answer within %s; its sandbox was killed",
                                               name, absl::FormatDuration(timeout)));
        break;
      case absl::StatusCode::kResourceExhausted:  // the instance's memory limit
        r = ErrorResponse(507, c.status.message());
        break;
      case absl::StatusCode::kUnavailable:
        r = ErrorResponse(c.forked ? 502 : 503, c.status.message());
        break;
      default:
        r = ErrorResponse(502, c.status.message());
    }
  } else {
    nlohmann::json j = nlohmann::json::parse(c.reply, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      r = ErrorResponse(502, "the runtime's reply is not a JSON object");
    } else if (j.contains("result")) {
      r = Json(200, j["result"]);
    } else {
      r = Json(500, {{"error", j.value("error", "unknown error")},
                     {"traceback", j.value("traceback", "")}});
    }
    functions_.CountCall(*fn);
    if (opts_.promote_after > 0 &&
        functions_.RecentCalls(*fn, opts_.promote_window) >= opts_.promote_after) {
      rt->PromoteAsync(fn);
    }
  }
  return r;
}

HttpResponse Gateway::ListFunctions() {
  nlohmann::json out = nlohmann::json::array();
  std::map<std::string, std::string> l2_of;
  for (const auto& [runtime, rt] : runtimes_) {
    for (const auto& [id, fv] : rt->L2Seeds()) l2_of[fv.first] = id;
  }
  for (const auto& f : functions_.All()) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& [p, src] : f->files) files.push_back(p);
    out.push_back({{"name", f->name},
                   {"runtime", f->runtime},
                   {"handler", f->handler},
                   {"version", f->version},
                   {"files", files},
                   {"calls", functions_.Calls(*f)},
                   {"seed", l2_of.contains(f->name) ? nlohmann::json(l2_of[f->name]) : nlohmann::json()}});
  }
  return Json(200, out);
}

HttpResponse Gateway::ListSeeds() {
  absl::StatusOr<fri::v1::StatsResponse> stats = sandboxes_.Stats("");
  std::map<std::string, fri::v1::SandboxStats> by_id;
  if (stats.ok()) {
    for (const auto& s : stats->sandboxes()) by_id[s.id()] = s;
  }
  nlohmann::json out = nlohmann::json::array();
  fri::v1::ListResponse list = sandboxes_.List();
  for (const auto& info : list.sandboxes()) {
    if (info.status() != "paused") continue;  // instances are not seeds
    // Nor is a containerd container forked paused (shim/seed_fork.h).
    if (info.labels().contains("owner")) continue;
    const fri::v1::SandboxStats& s = by_id[info.id()];
    auto label = [&](const char* k) {
      auto it = info.labels().find(k);
      return it == info.labels().end() ? nlohmann::json() : nlohmann::json(it->second);
    };
    out.push_back({{"id", info.id()},
                   {"parent", info.parent().empty() ? nlohmann::json() : nlohmann::json(info.parent())},
                   {"level", label("level")},
                   {"runtime", label("runtime")},
                   {"function", label("function")},
                   {"pid", info.pid()},
                   {"uss_bytes", s.uss_bytes()},
                   {"pss_bytes", s.pss_bytes()},
                   {"host_processes", s.host_processes()},
                   {"children", s.children()},
                   {"forks_served", s.forks_served()}});
  }
  return Json(200, out);
}


HttpResponse Gateway::RenderMetrics() {
  std::vector<Sample> samples;
  absl::StatusOr<fri::v1::StatsResponse> stats = sandboxes_.Stats("");
  std::map<std::string, fri::v1::SandboxStats> by_id;
  if (stats.ok()) {
    for (const auto& s : stats->sandboxes()) by_id[s.id()] = s;
  }
  double live = 0;
  const fri::v1::ListResponse list = sandboxes_.List();  // outlives the loop
  for (const auto& info : list.sandboxes()) {
    if (info.status() != "paused") {
      ++live;
      continue;
    }
    const fri::v1::SandboxStats& s = by_id[info.id()];
    auto label = [&](const char* k) {
      auto it = info.labels().find(k);
      return it == info.labels().end() ? std::string() : it->second;
    };
    std::vector<std::pair<std::string, std::string>> l = {
        {"seed", info.id()}, {"runtime", label("runtime")}, {"level", label("level")}};
    samples.push_back({"seedd_seed_uss_bytes",
                       "Memory only this seed's host processes hold (USS, smaps_rollup).", "gauge", l,
                       static_cast<double>(s.uss_bytes())});
    samples.push_back({"seedd_seed_pss_bytes",
                       "This seed's proportional share of the memory it maps (PSS, smaps_rollup).",
                       "gauge", l, static_cast<double>(s.pss_bytes())});
    samples.push_back({"seedd_seed_forks_total", "Sandboxes forked from this seed.", "counter", l,
                       static_cast<double>(s.forks_served())});
  }
  for (const auto& [runtime, rt] : runtimes_) {
    for (const SeedLoad& x : rt->Loads()) {
      std::vector<std::pair<std::string, std::string>> l = {{"seed", x.seed}};
      samples.push_back({"seedd_seed_copies", "Copies of this seed: itself and its replicas.", "gauge", l,
                         static_cast<double>(x.copies)});
      samples.push_back({"seedd_seed_forking", "Forks from this seed (any copy) in flight now.", "gauge", l,
                         static_cast<double>(x.forking)});
      samples.push_back({"seedd_seed_queued_forks_total",
                         "Forks that found every copy of this seed busy forking.", "counter", l,
                         static_cast<double>(x.queued_forks)});
      samples.push_back({"seedd_seed_replicas_made_total", "Replicas of this seed made.", "counter", l,
                         static_cast<double>(x.replicas_made)});
      samples.push_back({"seedd_seed_replicas_dropped_total", "Idle replicas of this seed destroyed.",
                         "counter", l, static_cast<double>(x.replicas_dropped)});
    }
  }
  samples.push_back({"seedd_live_instances", "Sandboxes running now (instances and seeds being made).",
                     "gauge", {}, live});
  if (opts_.more_metrics) {
    for (Sample& s : opts_.more_metrics()) samples.push_back(std::move(s));
  }
  HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_.Render(samples);
  return r;
}

}  // namespace seedvisor::seedd
