// The processes of a task: Exec, Wait, and the exits the shim records and publishes.
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "shim/log.h"
#include "shim/proto/events.pb.h"
#include "shim/task_service.h"
#include "shim/util.h"

namespace seedvisor::shim {

namespace ctl = ::seedvisor::control::v1;
namespace ev = ::containerd::events;
using ::containerd::v1::types::STOPPED;

void TaskService::WatchExit(std::shared_ptr<Container> c, std::shared_ptr<Proc> p) {
  ctl::WaitRequest wr;
  wr.set_container_id(c->id);
  wr.set_pid(p->sandbox_pid);
  ctl::WaitResponse out;
  absl::Status s = c->sandbox->Call("Wait", wr, &out);
  uint32_t status;
  google::protobuf::Timestamp at;
  if (s.ok()) {
    status = out.exit_status();
    at = out.exited_at_unix_nanos() > 0 ? TimestampFromUnixNanos(out.exited_at_unix_nanos())
                                        : Now();
  } else {
    // The sandbox went away: everything in it is dead, as if SIGKILLed
    // with it. (Its process, the sentry, is pid 2 of its own pid namespace,
    // not our child: no wait status of its is ours to wait for. Waiting
    // for one held the exit back 1 s, in which Kill failed: issue 14.)
    ShimLog("wait %s/%s: %s", c->id, p->exec_id, s.ToString());
    status = 137;
    at = Now();
  }
  // Terminal output still in the pty goes out before Wait returns.
  if (p->io != nullptr) p->io->Finish(absl::Seconds(2));
  RecordExit(*c, p.get(), status, at);
}

void TaskService::RecordExit(const Container& c, Proc* p, uint32_t status,
                             google::protobuf::Timestamp at) {
  // A process that exits before it started (killed while created) still
  // has the shim's early writers: its client waits for EOF after the exit.
  if (p->io != nullptr) p->io->DropEarlyWriters();
  {
    absl::MutexLock l(&mu_);
    if (p->exited) return;
    p->exited = true;
    p->status = STOPPED;
    p->exit_status = status;
    p->exited_at = at;
  }
  ev::TaskExit e;
  e.set_container_id(c.id);
  e.set_id(p->exec_id.empty() ? c.id : p->exec_id);
  e.set_pid(p->pid);
  e.set_exit_status(status);
  *e.mutable_exited_at() = at;
  publisher_->Publish("/tasks/exit", e);
}

absl::StatusOr<task::WaitResponse> TaskService::Wait(const task::WaitRequest& req) {
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  absl::MutexLock l(&mu_);
  absl::StatusOr<std::shared_ptr<Proc>> p = FindProc(**c, req.exec_id());
  if (!p.ok()) return p.status();
  // ctr calls Wait before Start: wait for the exit, however long.
  mu_.Await(absl::Condition(&(*p)->exited));
  task::WaitResponse resp;
  resp.set_exit_status((*p)->exit_status);
  *resp.mutable_exited_at() = (*p)->exited_at;
  return resp;
}

absl::Status TaskService::Exec(const task::ExecProcessRequest& req) {
  absl::MutexLock lc(&lifecycle_mu_);
  absl::StatusOr<std::shared_ptr<Container>> c = Find(req.id());
  if (!c.ok()) return c.status();
  if (req.exec_id().empty()) return absl::InvalidArgumentError("exec: empty exec id");
  absl::StatusOr<ctl::ExecRequest> spec = ExecFromOciProcess(req.spec().value());
  if (!spec.ok()) return spec.status();
  {
    absl::MutexLock l(&mu_);
    if ((*c)->init->exited) {
      return absl::FailedPreconditionError(absl::StrCat("container ", req.id(), " has exited"));
    }
    if ((*c)->execs.count(req.exec_id()) > 0) {
      return absl::AlreadyExistsError(absl::StrCat("exec ", req.exec_id(), ": already exists"));
    }
  }
  auto p = std::make_shared<Proc>();
  p->exec_id = req.exec_id();
  p->stdin_path = req.stdin();
  p->stdout_path = req.stdout();
  p->stderr_path = req.stderr();
  p->terminal = req.terminal();
  p->exec = std::move(*spec);
  absl::StatusOr<std::shared_ptr<ProcessIO>> io =
      ProcessIO::Create(req.stdin(), req.stdout(), req.stderr(), req.terminal());
  if (!io.ok()) return io.status();
  p->io = *io;
  {
    absl::MutexLock l(&mu_);
    (*c)->execs[req.exec_id()] = p;
  }
  ev::TaskExecAdded e;
  e.set_container_id(req.id());
  e.set_exec_id(req.exec_id());
  publisher_->Publish("/tasks/exec-added", e);
  return absl::OkStatus();
}

}  // namespace seedvisor::shim
