// LineDiscipline: the terminal line discipline of one pty (Linux's n_tty),
// as plain data: no locking and no blocking. The Pty that owns it serializes
// the calls and turns "nothing to read" / "no room" into waits.
//
// Input (bytes written to the master) goes through c_iflag and c_lflag
// processing (ICRNL, ICANON line editing, ECHO ...) into the queue the
// replica reads; output (bytes written to the replica, and echoes) goes
// through c_oflag processing (OPOST, ONLCR) into the queue the master reads.
// Signal characters (ISIG) are handed back to the caller, who sends them to
// the foreground process group.
//
//   LineDiscipline ld;
//   std::vector<int> sigs;
//   ld.Input("ls\r", 3, &sigs);              // the master wrote "ls\r"
//   char buf[16];
//   auto n = ld.ReadInput(buf, sizeof(buf)); // "ls\n" for the replica
//   size_t m = ld.ReadOutput(buf, sizeof(buf));  // the echo "ls\r\n"
#ifndef SEEDVISOR_SENTRY_FS_DEVPTS_LINE_DISCIPLINE_H_
#define SEEDVISOR_SENTRY_FS_DEVPTS_LINE_DISCIPLINE_H_

#include <termios.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace seedvisor::sentry {

// The kernel's struct termios (include/uapi/asm-generic/termbits.h) as
// TCGETS/TCSETS copy it: glibc's struct termios is larger.
struct KernelTermios {
  uint32_t c_iflag;
  uint32_t c_oflag;
  uint32_t c_cflag;
  uint32_t c_lflag;
  uint8_t c_line;
  uint8_t c_cc[19];
};
static_assert(sizeof(KernelTermios) == 36);

// struct termios2 (TCGETS2/TCSETS2): the same plus the two speeds.
struct KernelTermios2 {
  KernelTermios t;
  uint32_t c_ispeed;
  uint32_t c_ospeed;
};
static_assert(sizeof(KernelTermios2) == 44);

class LineDiscipline {
 public:
  // N_TTY_BUF_SIZE: what the replica can have queued to read.
  static constexpr size_t kInputMax = 4096;
  // What the replica can have written that the master has not read.
  static constexpr size_t kOutputMax = 16384;

  LineDiscipline();

  // tty_std_termios in drivers/tty/tty_io.c.
  static KernelTermios DefaultTermios();

  const KernelTermios& termios() const { return t_; }
  // TCSETS: switching ICANON on makes pending raw input one readable line,
  // switching it off makes lines and the line being edited raw input
  // (n_tty_set_termios()).
  void SetTermios(const KernelTermios& t);

  // ---- Master to replica ----
  // Processes bytes the master wrote; returns how many it took (fewer when
  // the input queue is full). Signal characters are appended to `signals`
  // (SIGINT, SIGQUIT, SIGTSTP).
  size_t Input(const char* buf, size_t len, std::vector<int>* signals);
  // Room for more input (the master is writable).
  bool InputRoom() const { return InputSize() < kInputMax; }
  // Bytes a read would return now (FIONREAD): complete lines in canonical
  // mode (inq_canon()).
  size_t InputReadable() const;
  // poll(2) readability of the replica (input_available_p()): a complete
  // line, or at least VMIN bytes when VTIME is 0, or one byte.
  bool ReplicaReadable() const;
  // A read by the replica: canonical mode returns at most one line (an
  // end-of-file line gives 0) or nullopt if no line is complete;
  // non-canonical mode returns what is queued, up to `len` (maybe 0).
  std::optional<size_t> ReadInput(char* buf, size_t len);
  void FlushInput();

  // ---- Replica to master ----
  // Processes bytes the replica wrote; returns how many it took.
  size_t Output(const char* buf, size_t len);
  bool OutputRoom() const { return out_.size() < kOutputMax; }
  size_t OutputQueued() const { return out_.size(); }
  size_t ReadOutput(char* buf, size_t len);
  void FlushOutput() { out_.clear(); }

 private:
  bool Canonical() const { return t_.c_lflag & ICANON; }
  bool Is(uint8_t c, int idx) const { return t_.c_cc[idx] != 0 && c == t_.c_cc[idx]; }
  size_t InputSize() const;
  void ReceiveChar(uint8_t c, std::vector<int>* signals);
  void Erase(uint8_t c);
  void EndLine(std::string line);
  // Echoes as n_tty's echo_char(): control characters as ^X with ECHOCTL.
  void EchoChar(uint8_t c);
  // One character of output through OPOST (do_output_char()).
  void OutputChar(uint8_t c);

  KernelTermios t_;
  std::deque<std::string> lines_;  // complete lines (canonical)
  std::string edit_;               // the line being edited (canonical)
  std::string raw_;                // non-canonical input
  std::string out_;                // for the master to read
  bool lnext_ = false;             // VLNEXT: the next character is literal
  size_t column_ = 0;              // output column, for tabs and erase
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_DEVPTS_LINE_DISCIPLINE_H_
