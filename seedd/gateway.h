// The node gateway's routes (HTTP on 127.0.0.1):
//   PUT  /functions/NAME   deploy (functions.h has the body)   201 {"name","version"}
//   GET  /functions        the deployed functions              200 [...]
//   POST /invoke/NAME      body = the JSON event               200 the handler's JSON result
//        404 unknown function, 400 malformed JSON event, 500 {"error","traceback"}
//        when the handler raised, 504 when the deadline passed (instance
//        killed), 507 when the instance hit its cgroup's memory limit (the
//        message names the limit), 502 when it died otherwise, 503 when no
//        seed could be forked. Every answer of an invocation carries
//        Server-Timing (fork, run, destroy, total) and X-Seedd-Seed.
//   GET  /seeds            the seed tree with memory per seed  200 [...]
//   GET  /metrics          Prometheus text (seedd/metrics.h, plus seed memory,
//                          forks per seed, live instances, pool levels)
//
//   Gateway g(functions, {{"python", &python}, {"node", &node}}, sandboxes,
//             {.timeout = absl::Seconds(30)});
//   HttpResponse resp = g.Handle(request);
#ifndef SEEDVISOR_SEEDD_GATEWAY_H_
#define SEEDVISOR_SEEDD_GATEWAY_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/time/time.h"
#include "fri/sandboxes.h"
#include "seedd/functions.h"
#include "seedd/http.h"
#include "seedd/metrics.h"
#include <map>
#include <string>

#include "seedd/runtime_seeds.h"

namespace seedvisor::seedd {

struct GatewayOptions {
  absl::Duration timeout = absl::Seconds(30);  // a call's deadline unless its function sets one
  // A function gets its L2 seed at its promote_after'th call within
  // promote_window (0 = never promote).
  uint64_t promote_after = 2;
  absl::Duration promote_window = absl::Minutes(10);
  // More samples for GET /metrics (e.g. pool levels); may be empty.
  std::function<std::vector<Sample>()> more_metrics;
};

class Gateway {
 public:
  // runtimes: the seed trees booted on this node, by runtime name.
  Gateway(Functions& functions, std::map<std::string, RuntimeSeeds*> runtimes,
          fri::Sandboxes& sandboxes, GatewayOptions o)
      : functions_(functions), runtimes_(std::move(runtimes)), sandboxes_(sandboxes), opts_(o) {}

  HttpResponse Handle(const HttpRequest& req);

 private:
  HttpResponse Deploy(const std::string& name, const std::string& body);
  HttpResponse Invoke(const std::string& name, const std::string& body);
  HttpResponse ListFunctions();
  HttpResponse ListSeeds();
  HttpResponse RenderMetrics();
  HttpResponse InvokeUncounted(const std::string& name, const std::string& body, CallResult& c);

  Functions& functions_;
  RuntimeSeeds* RuntimeFor(const Function& f) const;

  const std::map<std::string, RuntimeSeeds*> runtimes_;
  fri::Sandboxes& sandboxes_;
  const GatewayOptions opts_;
  Metrics metrics_;
};

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_GATEWAY_H_
