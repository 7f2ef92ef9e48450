#include "sentry/fs/devpts/line_discipline.h"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace seedvisor::sentry {

namespace {

bool IsCtrl(uint8_t c) { return c < 0x20 || c == 0x7f; }

}  // namespace

LineDiscipline::LineDiscipline() : t_(DefaultTermios()) {}

KernelTermios LineDiscipline::DefaultTermios() {
  KernelTermios t{};
  t.c_iflag = ICRNL | IXON;
  t.c_oflag = OPOST | ONLCR;
  t.c_cflag = B38400 | CS8 | CREAD | HUPCL;
  t.c_lflag = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN;
  // INIT_C_CC: ^C ^\ DEL ^U ^D, VTIME 0, VMIN 1, VSWTC 0, ^Q ^S ^Z, VEOL 0,
  // ^R ^O ^W ^V, VEOL2 0.
  const uint8_t cc[19] = {3, 034, 0177, 025, 4, 0, 1, 0, 021, 023, 032, 0, 022, 017, 027, 026, 0};
  memcpy(t.c_cc, cc, sizeof(cc));
  return t;
}

void LineDiscipline::SetTermios(const KernelTermios& t) {
  bool was_canon = Canonical();
  t_ = t;
  if (was_canon && !Canonical()) {
    for (auto& l : lines_) raw_ += l;
    raw_ += edit_;
    lines_.clear();
    edit_.clear();
  } else if (!was_canon && Canonical() && !raw_.empty()) {
    lines_.push_back(std::move(raw_));
    raw_.clear();
  }
}

size_t LineDiscipline::InputSize() const {
  size_t n = edit_.size() + raw_.size();
  for (const auto& l : lines_) n += l.size();
  return n;
}

size_t LineDiscipline::InputReadable() const {
  if (!Canonical()) return raw_.size();
  size_t n = 0;
  for (const auto& l : lines_) n += l.size();
  return n;
}

bool LineDiscipline::ReplicaReadable() const {
  if (Canonical()) return !lines_.empty();
  size_t want = 1;
  if (t_.c_cc[VTIME] == 0 && t_.c_cc[VMIN] > 0) want = t_.c_cc[VMIN];
  return raw_.size() >= want;
}

std::optional<size_t> LineDiscipline::ReadInput(char* buf, size_t len) {
  if (Canonical()) {
    if (lines_.empty()) return std::nullopt;
    std::string& l = lines_.front();
    size_t n = std::min(len, l.size());
    memcpy(buf, l.data(), n);
    if (n == l.size()) {
      lines_.pop_front();
    } else {
      l.erase(0, n);
    }
    return n;
  }
  size_t n = std::min(len, raw_.size());
  memcpy(buf, raw_.data(), n);
  raw_.erase(0, n);
  return n;
}

void LineDiscipline::FlushInput() {
  lines_.clear();
  edit_.clear();
  raw_.clear();
  lnext_ = false;
}

size_t LineDiscipline::Input(const char* buf, size_t len, std::vector<int>* signals) {
  size_t i = 0;
  for (; i < len; ++i) {
    if (!InputRoom()) break;
    ReceiveChar(static_cast<uint8_t>(buf[i]), signals);
  }
  return i;
}

void LineDiscipline::EndLine(std::string line) {
  lines_.push_back(std::move(line));
  edit_.clear();
}

// n_tty_receive_char_special() and n_tty_receive_char(), in their order.
void LineDiscipline::ReceiveChar(uint8_t c, std::vector<int>* signals) {
  const uint32_t ifl = t_.c_iflag, lfl = t_.c_lflag;
  bool echo = lfl & ECHO;
  if (ifl & ISTRIP) c &= 0x7f;
  if ((ifl & IUCLC) && (lfl & IEXTEN)) c = static_cast<uint8_t>(tolower(c));
  if (lnext_) {
    // A literal character: no special meaning, echoed as ^X.
    lnext_ = false;
    if (echo) {
      if (!out_.empty() && out_.back() == '\b') out_.pop_back();  // the ^ stays
      if ((lfl & ECHOCTL) && !out_.empty() && out_.back() == '^') out_.pop_back();
      EchoChar(c);
    }
    if (Canonical()) {
      if (edit_.size() < kInputMax - 1) edit_.push_back(static_cast<char>(c));
    } else {
      raw_.push_back(static_cast<char>(c));
    }
    return;
  }
  if (ifl & IXON) {
    // Flow control characters are taken by the line discipline; output is
    // not actually stopped here.
    if (Is(c, VSTART) || Is(c, VSTOP)) return;
  }
  if (lfl & ISIG) {
    int sig = Is(c, VINTR) ? SIGINT : Is(c, VQUIT) ? SIGQUIT : Is(c, VSUSP) ? SIGTSTP : 0;
    if (sig != 0) {
      // isig(): the queues are flushed unless NOFLSH, then the character
      // is echoed.
      if (!(lfl & NOFLSH)) {
        FlushInput();
        FlushOutput();
      }
      if (echo) EchoChar(c);
      signals->push_back(sig);
      return;
    }
  }
  if (c == '\r') {
    if (ifl & IGNCR) return;
    if (ifl & ICRNL) c = '\n';
  } else if (c == '\n' && (ifl & INLCR)) {
    c = '\r';
  }
  if (Canonical()) {
    if (Is(c, VERASE) || Is(c, VKILL) || ((lfl & IEXTEN) && Is(c, VWERASE))) {
      Erase(c);
      return;
    }
    if ((lfl & IEXTEN) && Is(c, VLNEXT)) {
      lnext_ = true;
      if (echo && (lfl & ECHOCTL)) {
        out_ += "^\b";
      }
      return;
    }
    if ((lfl & IEXTEN) && echo && Is(c, VREPRINT)) {
      EchoChar(c);
      OutputChar('\n');
      for (char e : edit_) EchoChar(static_cast<uint8_t>(e));
      return;
    }
    if (c == '\n') {
      if (echo || (lfl & ECHONL)) OutputChar('\n');
      edit_.push_back('\n');
      EndLine(std::move(edit_));
      return;
    }
    if (Is(c, VEOF)) {
      // The line ends without the character; at the start of a line the
      // read returns 0, end of file.
      EndLine(std::move(edit_));
      return;
    }
    if (Is(c, VEOL) || ((lfl & IEXTEN) && Is(c, VEOL2))) {
      if (echo) EchoChar(c);
      edit_.push_back(static_cast<char>(c));
      EndLine(std::move(edit_));
      return;
    }
    // n_tty keeps one byte free for the newline; further characters of an
    // over-long line are dropped.
    if (edit_.size() >= kInputMax - 1) return;
    if (echo) EchoChar(c);
    edit_.push_back(static_cast<char>(c));
    return;
  }
  if (echo) {
    if (c == '\n') {
      OutputChar('\n');
    } else {
      EchoChar(c);
    }
  }
  raw_.push_back(static_cast<char>(c));
}

// eraser(): VERASE removes one character, VWERASE one word, VKILL the line.
void LineDiscipline::Erase(uint8_t c) {
  const uint32_t lfl = t_.c_lflag;
  bool echo = lfl & ECHO;
  if (edit_.empty()) return;
  bool kill = Is(c, VKILL);
  if (kill && (!echo || !(lfl & ECHOK) || !(lfl & ECHOKE) || !(lfl & ECHOE))) {
    edit_.clear();
    if (echo) {
      EchoChar(c);
      if (lfl & ECHOK) OutputChar('\n');
    }
    return;
  }
  if (!kill && !Is(c, VWERASE) && echo && !(lfl & ECHOE)) {
    edit_.pop_back();
    EchoChar(c);
    return;
  }
  bool werase = !kill && Is(c, VWERASE);
  bool seen_alnum = false;
  while (!edit_.empty()) {
    uint8_t e = static_cast<uint8_t>(edit_.back());
    if (werase) {
      if (isalnum(e) || e == '_') {
        seen_alnum = true;
      } else if (seen_alnum) {
        break;
      }
    }
    edit_.pop_back();
    if (echo) {
      // A ^X echo takes two columns.
      int cols = (IsCtrl(e) && e != '\t' && (lfl & ECHOCTL)) ? 2 : 1;
      for (int i = 0; i < cols; ++i) out_ += "\b \b";
      column_ = column_ >= static_cast<size_t>(cols) ? column_ - cols : 0;
    }
    if (!kill && !werase) break;
  }
}

void LineDiscipline::EchoChar(uint8_t c) {
  if ((t_.c_lflag & ECHOCTL) && IsCtrl(c) && c != '\t') {
    out_.push_back('^');
    out_.push_back(static_cast<char>(c ^ 0100));
    column_ += 2;
    return;
  }
  OutputChar(c);
}

void LineDiscipline::OutputChar(uint8_t c) {
  const uint32_t ofl = t_.c_oflag;
  if (!(ofl & OPOST)) {
    out_.push_back(static_cast<char>(c));
    return;
  }
  switch (c) {
    case '\n':
      if (ofl & ONLRET) column_ = 0;
      if (ofl & ONLCR) {
        out_ += "\r\n";
        column_ = 0;
        return;
      }
      break;
    case '\r':
      if ((ofl & ONOCR) && column_ == 0) return;
      if (ofl & OCRNL) {
        c = '\n';
        if (ofl & ONLRET) column_ = 0;
        break;
      }
      column_ = 0;
      break;
    case '\t':
      if ((ofl & TABDLY) == XTABS) {
        size_t spaces = 8 - (column_ & 7);
        out_.append(spaces, ' ');
        column_ += spaces;
        return;
      }
      column_ = (column_ | 7) + 1;
      break;
    case '\b':
      if (column_ > 0) column_--;
      break;
    default:
      if (!IsCtrl(c)) {
        if (ofl & OLCUC) c = static_cast<uint8_t>(toupper(c));
        column_++;
      }
      break;
  }
  out_.push_back(static_cast<char>(c));
}

size_t LineDiscipline::Output(const char* buf, size_t len) {
  size_t i = 0;
  for (; i < len && OutputRoom(); ++i) OutputChar(static_cast<uint8_t>(buf[i]));
  return i;
}

size_t LineDiscipline::ReadOutput(char* buf, size_t len) {
  size_t n = std::min(len, out_.size());
  memcpy(buf, out_.data(), n);
  out_.erase(0, n);
  return n;
}

}  // namespace seedvisor::sentry
