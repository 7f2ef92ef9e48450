#include "fri/server.h"

#include <unistd.h>

namespace seedvisor::fri {

void RegisterFri(ttrpc::Server& server, Sandboxes& sb) {
  using ttrpc::CallContext;
  server.set_max_request_fds(1);  // a Fork's network device
  server.RegisterMethod<v1::CreateRequest, v1::CreateResponse>(
      kService, "Create", [&sb](const CallContext&, const v1::CreateRequest& req) {
        return sb.Create(req);
      });
  server.RegisterMethod<v1::ForkRequest, v1::ForkResponse>(
      kService, "Fork",
      [&sb](const CallContext& ctx, const v1::ForkRequest& req) {
        // req.net_device's packet socket comes with the request.
        const int fd = ctx.fds.Take(0);
        absl::StatusOr<v1::ForkResponse> r = sb.Fork(req, fd);
        if (fd >= 0) close(fd);  // the seed has its own copy
        return r;
      });
  server.RegisterMethod<v1::ActivateRequest, v1::ActivateResponse>(
      kService, "Activate",
      [&sb](const CallContext&,
            const v1::ActivateRequest& req) -> absl::StatusOr<v1::ActivateResponse> {
        if (absl::Status s = sb.Activate(req.id()); !s.ok()) return s;
        return v1::ActivateResponse();
      });
  server.RegisterMethod<v1::PauseRequest, v1::PauseResponse>(
      kService, "Pause",
      [&sb](const CallContext&, const v1::PauseRequest& req) -> absl::StatusOr<v1::PauseResponse> {
        if (absl::Status s = sb.Pause(req.id()); !s.ok()) return s;
        return v1::PauseResponse();
      });
  server.RegisterMethod<v1::DestroyRequest, v1::DestroyResponse>(
      kService, "Destroy",
      [&sb](const CallContext&,
            const v1::DestroyRequest& req) -> absl::StatusOr<v1::DestroyResponse> {
        if (absl::Status s = sb.Destroy(req.id()); !s.ok()) return s;
        return v1::DestroyResponse();
      });
  server.RegisterMethod<v1::StatsRequest, v1::StatsResponse>(
      kService, "Stats",
      [&sb](const CallContext&, const v1::StatsRequest& req) { return sb.Stats(req.id()); });
  server.RegisterMethod<v1::ListRequest, v1::ListResponse>(
      kService, "List",
      [&sb](const CallContext&, const v1::ListRequest&) -> absl::StatusOr<v1::ListResponse> {
        return sb.List();
      });
}

}  // namespace seedvisor::fri
