#include "sentry/fs/devpts/line_discipline.h"

#include <signal.h>

#include <string>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

std::vector<int> g_sigs;

void In(LineDiscipline& ld, const std::string& s) { ld.Input(s.data(), s.size(), &g_sigs); }

std::optional<std::string> ReadIn(LineDiscipline& ld, size_t len = 100) {
  std::string buf(len, '\0');
  auto n = ld.ReadInput(buf.data(), len);
  if (!n) return std::nullopt;
  buf.resize(*n);
  return buf;
}

std::string ReadOut(LineDiscipline& ld) {
  std::string buf(LineDiscipline::kOutputMax + 64, '\0');
  buf.resize(ld.ReadOutput(buf.data(), buf.size()));
  return buf;
}

TEST(LineDiscipline, CanonicalLineWithEchoAndCrToNl) {
  LineDiscipline ld;
  In(ld, "ab");
  EXPECT_FALSE(ld.ReplicaReadable());
  EXPECT_EQ(ReadIn(ld), std::nullopt);
  In(ld, "c\r");
  EXPECT_TRUE(ld.ReplicaReadable());
  EXPECT_EQ(ld.InputReadable(), 4u);
  EXPECT_EQ(ReadIn(ld), "abc\n");
  EXPECT_EQ(ReadOut(ld), "abc\r\n");
}

TEST(LineDiscipline, PartialReadsOfALine) {
  LineDiscipline ld;
  In(ld, "hello\nworld\n");
  EXPECT_EQ(ReadIn(ld, 3), "hel");
  EXPECT_EQ(ReadIn(ld), "lo\n");
  EXPECT_EQ(ReadIn(ld), "world\n");
}

TEST(LineDiscipline, EraseKillAndEof) {
  LineDiscipline ld;
  In(ld, "abx\x7f" "c\n");
  EXPECT_EQ(ReadIn(ld), "abc\n");
  EXPECT_EQ(ReadOut(ld), "abx\b \bc\r\n");
  In(ld, "junk\x15ok\x04");  // ^U kills the line, ^D ends "ok" without a newline
  EXPECT_EQ(ReadIn(ld), "ok");
  In(ld, "\x04");  // ^D at the start of a line: end of file
  EXPECT_EQ(ReadIn(ld), "");
  In(ld, "one two\x17" "2\n");  // ^W erases "two"
  EXPECT_EQ(ReadIn(ld), "one 2\n");
}

TEST(LineDiscipline, SignalCharactersFlushAndEcho) {
  LineDiscipline ld;
  g_sigs.clear();
  In(ld, "abc\x03");
  EXPECT_EQ(g_sigs, std::vector<int>{SIGINT});
  EXPECT_EQ(ReadOut(ld), "^C");
  In(ld, "\n");
  EXPECT_EQ(ReadIn(ld), "\n");  // "abc" was flushed
  In(ld, "\x1c\x1a");
  EXPECT_EQ(g_sigs, (std::vector<int>{SIGINT, SIGQUIT, SIGTSTP}));
}

TEST(LineDiscipline, RawModeAndModeSwitch) {
  LineDiscipline ld;
  In(ld, "pending");
  KernelTermios t = ld.termios();
  t.c_lflag &= ~(ICANON | ECHO | ISIG);
  t.c_iflag &= ~ICRNL;
  ld.SetTermios(t);
  EXPECT_EQ(ReadIn(ld, 4), "pend");
  In(ld, "\r\x03");
  EXPECT_EQ(ReadIn(ld), "ing\r\x03");
  EXPECT_EQ(ReadIn(ld), "");  // non-canonical: 0 bytes, not "no line"
  In(ld, "xy");
  t.c_lflag |= ICANON;
  ld.SetTermios(t);
  EXPECT_EQ(ReadIn(ld), "xy");  // raw input becomes one readable line
}

TEST(LineDiscipline, VminGatesPollReadability) {
  LineDiscipline ld;
  KernelTermios t = ld.termios();
  t.c_lflag &= ~ICANON;
  t.c_cc[VMIN] = 3;
  t.c_cc[VTIME] = 0;
  ld.SetTermios(t);
  In(ld, "ab");
  EXPECT_FALSE(ld.ReplicaReadable());
  In(ld, "c");
  EXPECT_TRUE(ld.ReplicaReadable());
}

TEST(LineDiscipline, OutputProcessing) {
  LineDiscipline ld;
  ld.Output("a\nb", 3);
  EXPECT_EQ(ReadOut(ld), "a\r\nb");
  KernelTermios t = ld.termios();
  t.c_oflag &= ~OPOST;
  ld.SetTermios(t);
  ld.Output("a\nb", 3);
  EXPECT_EQ(ReadOut(ld), "a\nb");
  LineDiscipline tabs;  // a fresh one: column 0
  t.c_oflag |= OPOST | XTABS;
  tabs.SetTermios(t);
  tabs.Output("ab\tc", 4);
  EXPECT_EQ(ReadOut(tabs), "ab      c");
}

TEST(LineDiscipline, InputAndOutputAreBounded) {
  LineDiscipline ld;
  KernelTermios t = ld.termios();
  t.c_lflag &= ~(ICANON | ECHO);
  ld.SetTermios(t);
  std::string big(LineDiscipline::kInputMax + 100, 'x');
  EXPECT_EQ(ld.Input(big.data(), big.size(), &g_sigs), LineDiscipline::kInputMax);
  EXPECT_FALSE(ld.InputRoom());
  std::string out(LineDiscipline::kOutputMax + 100, 'y');
  EXPECT_EQ(ld.Output(out.data(), out.size()), LineDiscipline::kOutputMax);
  EXPECT_FALSE(ld.OutputRoom());
}

TEST(LineDiscipline, CanonicalOverlongLineKeepsRoomForNewline) {
  LineDiscipline ld;
  KernelTermios t = ld.termios();
  t.c_lflag &= ~ECHO;
  ld.SetTermios(t);
  std::string big(LineDiscipline::kInputMax + 10, 'z');
  EXPECT_EQ(ld.Input(big.data(), big.size(), &g_sigs), big.size());  // excess dropped
  In(ld, "\n");
  auto line = ReadIn(ld, LineDiscipline::kInputMax + 10);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->size(), LineDiscipline::kInputMax);
  EXPECT_EQ(line->back(), '\n');
}

}  // namespace
}  // namespace seedvisor::sentry
