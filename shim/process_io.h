// The IO of one container process, between containerd's fifos and the
// sandbox. The sandbox opens stdio *paths* itself (sentry/control/control.proto):
//  - stdout/stderr: output never passes through the shim: the sandbox
//    opens containerd's fifos itself. But the shim opens each fifo's write
//    end already in Create and hands the sandbox /proc/<shim pid>/fd/<fd>,
//    closing its own once Start/Exec returned: the client's reader (its
//    open(2) runs in a goroutine that must also mark the fifo opened)
//    meets a writer at Create, as with runc's shim, not only at Start. A
//    process that printed and exited within the moment between the
//    reader's open returning and that goroutine running lost its output:
//    the client's Delete cancels a fifo not yet marked open (containerd's
//    fifo package closes it), seen under load as `ctr run ... sh -c 'echo
//    hi; exit 3'` exiting 3 with no output. Every exit and failed start
//    drops the early writers first (DropEarlyWriters): a client waits for
//    EOF on its fifo before it deletes the task;
//  - stdin: the shim copies the fifo into a pipe and gives the sandbox
//    /proc/<shim pid>/fd/<read end>, so that CloseIO can close the stdin of a
//    process whose client keeps the fifo open;
//  - terminal: the sandbox sends the pty master over a console socket the
//    shim listens on; the shim copies fifo ↔ master and resizes it.
//
//   ASSIGN_OR_RETURN(auto io, ProcessIO::Create(stdin, stdout, stderr, tty));
//   control::Stdio s = io->SandboxStdio();   // into Start/Exec
//   ... after Start/Exec returned: io->Started();
//   ... after the process exited: io->Finish(absl::Seconds(2));
#ifndef SEEDVISOR_SHIM_PROCESS_IO_H_
#define SEEDVISOR_SHIM_PROCESS_IO_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/base/mono_condvar.h"
#include "sentry/control/control.pb.h"

namespace seedvisor::shim {

class ProcessIO : public std::enable_shared_from_this<ProcessIO> {
 public:
  static absl::StatusOr<std::shared_ptr<ProcessIO>> Create(const std::string& stdin_path,
                                                           const std::string& stdout_path,
                                                           const std::string& stderr_path,
                                                           bool terminal);
  ~ProcessIO();

  // The console socket the sandbox sends the pty master to ("" without a
  // terminal); seedsc create wants it too when process.terminal is set.
  const std::string& console_socket() const { return console_path_; }
  // What to put in the control request's stdio.
  seedvisor::control::v1::Stdio SandboxStdio() const;
  // Called once the sandbox has opened the stdio (Start/Exec returned):
  // drops the shim's copy of the stdin pipe's read end; with a terminal,
  // waits (up to 5 s) for the pty master.
  absl::Status Started();
  // Closes the shim's early write ends of the stdout/stderr fifos (Started
  // and Finish do too): before an exit is published or a start fails.
  void DropEarlyWriters();
  // CloseIO{stdin}: the process sees EOF on its stdin, after what the
  // client wrote into the fifo before asking (ctr sends CloseIO as soon as
  // its own stdin ends, when its data may still sit in the fifo) — even if
  // the client keeps the fifo open.
  void CloseStdin();
  // ResizePty.
  absl::Status Resize(uint32_t width, uint32_t height);
  // After the process exited: copies what is left of the terminal output
  // (bounded by timeout) and closes everything.
  void Finish(absl::Duration timeout);

 private:
  ProcessIO() = default;
  void CopyStdin();
  // Closes the stdin pipe (the process sees EOF); ^D with a terminal.
  void CloseStdinNow() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `out`: the early write end of the stdout fifo, or -1 (it opens the path).
  void CopyConsoleOut(int out);

  std::string stdin_path_, stdout_path_, stderr_path_;
  bool terminal_ = false;
  std::string console_path_;
  int console_listen_ = -1;
  int wake_[2] = {-1, -1};  // Finish → console copier: the process is gone
  int stdin_wake_[2] = {-1, -1};  // CloseStdin → stdin copier

  absl::Mutex mu_;
  sentry::MonoCondVar out_done_cv_;  // signalled when out_done_ is set
  int stdin_read_ ABSL_GUARDED_BY(mu_) = -1;   // given to the sandbox
  int stdin_write_ ABSL_GUARDED_BY(mu_) = -1;  // the copier writes here
  int master_ ABSL_GUARDED_BY(mu_) = -1;
  // The fifos' write ends opened in Create (-1: none, the path goes as is).
  int stdout_early_ ABSL_GUARDED_BY(mu_) = -1;
  int stderr_early_ ABSL_GUARDED_BY(mu_) = -1;
  bool out_done_ ABSL_GUARDED_BY(mu_) = false;
  bool stdin_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool copier_running_ ABSL_GUARDED_BY(mu_) = false;
  bool close_requested_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_PROCESS_IO_H_
