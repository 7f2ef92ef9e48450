// mkdir/rmdir, unlink, rename*, link, symlink/readlink, chdir/getcwd,
// getdents64, chmod, chown and utimensat.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class DirTest : public ::testing::Test {
 protected:
  bool Exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
  }
  mode_t Mode(const std::string& path) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return 0;
    return st.st_mode;
  }

  TempDir dir_;
};

// ---------------------------------------------------------------- mkdir

TEST_F(DirTest, MkdirCreatesDirectory) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  EXPECT_TRUE(S_ISDIR(Mode(dir_.Path("d"))));
}

TEST_F(DirTest, MkdirExistingIsEEXIST) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  EXPECT_ERRNO(EEXIST, mkdir(dir_.Path("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  EXPECT_ERRNO(EEXIST, mkdir(dir_.Path("f").c_str(), 0755));
  // Also for a dangling symlink: mkdir does not follow it.
  ASSERT_OK(symlink("nowhere", dir_.Path("link").c_str()));
  EXPECT_ERRNO(EEXIST, mkdir(dir_.Path("link").c_str(), 0755));
}

TEST_F(DirTest, MkdirMissingParentIsENOENT) {
  EXPECT_ERRNO(ENOENT, mkdir(dir_.Path("a/b").c_str(), 0755));
}

TEST_F(DirTest, MkdirUnderFileIsENOTDIR) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  EXPECT_ERRNO(ENOTDIR, mkdir(dir_.Path("f/d").c_str(), 0755));
}

TEST_F(DirTest, MkdirTrailingSlashWorks) {
  ASSERT_OK(mkdir((dir_.Path("d") + "/").c_str(), 0755));
  EXPECT_TRUE(S_ISDIR(Mode(dir_.Path("d"))));
}

TEST_F(DirTest, MkdiratRelativeToDirFd) {
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  ASSERT_OK(mkdirat(dfd.get(), "d", 0700));
  EXPECT_TRUE(S_ISDIR(Mode(dir_.Path("d"))));
  EXPECT_ERRNO(EEXIST, mkdirat(dfd.get(), "d", 0700));
  EXPECT_ERRNO(EBADF, mkdirat(-1, "d", 0700));
}

// ---------------------------------------------------------------- rmdir

TEST_F(DirTest, RmdirRemovesEmptyDirectory) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  ASSERT_OK(rmdir(dir_.Path("d").c_str()));
  EXPECT_FALSE(Exists(dir_.Path("d")));
}

TEST_F(DirTest, RmdirNonEmptyIsENOTEMPTY) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(dir_.Path("d/f"), ""));
  EXPECT_ERRNO(ENOTEMPTY, rmdir(dir_.Path("d").c_str()));
  EXPECT_TRUE(Exists(dir_.Path("d/f")));
}

TEST_F(DirTest, RmdirErrors) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  EXPECT_ERRNO(ENOTDIR, rmdir(dir_.Path("f").c_str()));
  EXPECT_ERRNO(ENOENT, rmdir(dir_.Path("missing").c_str()));
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  EXPECT_ERRNO(EINVAL, rmdir((dir_.Path("d") + "/.").c_str()));
  ASSERT_OK(symlink("d", dir_.Path("link").c_str()));
  EXPECT_ERRNO(ENOTDIR, rmdir(dir_.Path("link").c_str()));
}

// ---------------------------------------------------------------- unlink

TEST_F(DirTest, UnlinkRemovesFile) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  ASSERT_OK(unlink(dir_.Path("f").c_str()));
  EXPECT_FALSE(Exists(dir_.Path("f")));
  EXPECT_ERRNO(ENOENT, unlink(dir_.Path("f").c_str()));
}

TEST_F(DirTest, UnlinkDirectoryIsEISDIR) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  EXPECT_ERRNO(EISDIR, unlink(dir_.Path("d").c_str()));
}

TEST_F(DirTest, UnlinkSymlinkKeepsTarget) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  ASSERT_OK(symlink("f", dir_.Path("link").c_str()));
  ASSERT_OK(unlink(dir_.Path("link").c_str()));
  EXPECT_FALSE(Exists(dir_.Path("link")));
  EXPECT_TRUE(Exists(dir_.Path("f")));
}

TEST_F(DirTest, UnlinkOpenFileKeepsData) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "still here"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(unlink(dir_.Path("f").c_str()));
  char buf[16] = {};
  EXPECT_EQ(read(fd.get(), buf, sizeof(buf)), 10);
  EXPECT_STREQ(buf, "still here");
}

TEST_F(DirTest, UnlinkatRemovedir) {
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  EXPECT_ERRNO(EISDIR, unlinkat(dfd.get(), "d", 0));
  EXPECT_ERRNO(ENOTDIR, unlinkat(dfd.get(), "f", AT_REMOVEDIR));
  ASSERT_OK(unlinkat(dfd.get(), "d", AT_REMOVEDIR));
  ASSERT_OK(unlinkat(dfd.get(), "f", 0));
  EXPECT_FALSE(Exists(dir_.Path("d")));
  EXPECT_FALSE(Exists(dir_.Path("f")));
}

TEST_F(DirTest, UnlinkatRemovedirNonEmptyIsENOTEMPTY) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  ASSERT_OK(mkdir(dir_.Path("d/e").c_str(), 0755));
  EXPECT_ERRNO(ENOTEMPTY,
               unlinkat(AT_FDCWD, dir_.Path("d").c_str(), AT_REMOVEDIR));
}

TEST_F(DirTest, UnlinkatBadFlagsIsEINVAL) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  EXPECT_ERRNO(EINVAL, unlinkat(AT_FDCWD, dir_.Path("f").c_str(), 0x1));
  EXPECT_TRUE(Exists(dir_.Path("f")));
}

// ---------------------------------------------------------------- rename

TEST_F(DirTest, RenameMovesFile) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  ASSERT_OK(rename(dir_.Path("a").c_str(), dir_.Path("b").c_str()));
  EXPECT_FALSE(Exists(dir_.Path("a")));
  EXPECT_EQ(ReadFile(dir_.Path("b")), "A");
}

TEST_F(DirTest, RenameReplacesExistingFile) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  ASSERT_TRUE(WriteFile(dir_.Path("b"), "B"));
  ASSERT_OK(rename(dir_.Path("a").c_str(), dir_.Path("b").c_str()));
  EXPECT_EQ(ReadFile(dir_.Path("b")), "A");
  EXPECT_FALSE(Exists(dir_.Path("a")));
}

TEST_F(DirTest, RenameToSameFileIsNoop) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  ASSERT_OK(link(dir_.Path("a").c_str(), dir_.Path("b").c_str()));
  // Both names refer to one inode: rename does nothing and succeeds.
  ASSERT_OK(rename(dir_.Path("a").c_str(), dir_.Path("b").c_str()));
  EXPECT_TRUE(Exists(dir_.Path("a")));
  EXPECT_TRUE(Exists(dir_.Path("b")));
  ASSERT_OK(rename(dir_.Path("a").c_str(), dir_.Path("a").c_str()));
}

TEST_F(DirTest, RenameDirectoryOntoEmptyDirectory) {
  ASSERT_OK(mkdir(dir_.Path("a").c_str(), 0755));
  ASSERT_TRUE(WriteFile(dir_.Path("a/f"), "x"));
  ASSERT_OK(mkdir(dir_.Path("b").c_str(), 0755));
  ASSERT_OK(rename(dir_.Path("a").c_str(), dir_.Path("b").c_str()));
  EXPECT_EQ(ReadFile(dir_.Path("b/f")), "x");
}

TEST_F(DirTest, RenameDirectoryOntoNonEmptyIsENOTEMPTY) {
  ASSERT_OK(mkdir(dir_.Path("a").c_str(), 0755));
  ASSERT_OK(mkdir(dir_.Path("b").c_str(), 0755));
  ASSERT_TRUE(WriteFile(dir_.Path("b/f"), "x"));
  EXPECT_ERRNO(ENOTEMPTY,
               rename(dir_.Path("a").c_str(), dir_.Path("b").c_str()));
}

TEST_F(DirTest, RenameFileOntoDirectoryIsEISDIR) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  EXPECT_ERRNO(EISDIR, rename(dir_.Path("f").c_str(), dir_.Path("d").c_str()));
}

TEST_F(DirTest, RenameDirectoryOntoFileIsENOTDIR) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  EXPECT_ERRNO(ENOTDIR, rename(dir_.Path("d").c_str(), dir_.Path("f").c_str()));
}

TEST_F(DirTest, RenameDirectoryIntoItselfIsEINVAL) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  ASSERT_OK(mkdir(dir_.Path("d/sub").c_str(), 0755));
  EXPECT_ERRNO(EINVAL,
               rename(dir_.Path("d").c_str(), dir_.Path("d/sub/x").c_str()));
}

TEST_F(DirTest, RenameMissingSourceIsENOENT) {
  EXPECT_ERRNO(ENOENT,
               rename(dir_.Path("missing").c_str(), dir_.Path("b").c_str()));
}

TEST_F(DirTest, RenameatRelativeToDirFds) {
  ASSERT_OK(mkdir(dir_.Path("d1").c_str(), 0755));
  ASSERT_OK(mkdir(dir_.Path("d2").c_str(), 0755));
  ASSERT_TRUE(WriteFile(dir_.Path("d1/f"), "F"));
  FileDescriptor d1(open(dir_.Path("d1").c_str(), O_RDONLY | O_DIRECTORY));
  FileDescriptor d2(open(dir_.Path("d2").c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(d1.get(), 0);
  ASSERT_GE(d2.get(), 0);
  ASSERT_OK(renameat(d1.get(), "f", d2.get(), "g"));
  EXPECT_EQ(ReadFile(dir_.Path("d2/g")), "F");
  EXPECT_FALSE(Exists(dir_.Path("d1/f")));
}

TEST_F(DirTest, Renameat2Noreplace) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  ASSERT_TRUE(WriteFile(dir_.Path("b"), "B"));
  EXPECT_ERRNO(
      EEXIST, syscall(SYS_renameat2, AT_FDCWD, dir_.Path("a").c_str(), AT_FDCWD,
                      dir_.Path("b").c_str(), RENAME_NOREPLACE));
  EXPECT_EQ(ReadFile(dir_.Path("b")), "B");
  ASSERT_EQ(syscall(SYS_renameat2, AT_FDCWD, dir_.Path("a").c_str(), AT_FDCWD,
                    dir_.Path("c").c_str(), RENAME_NOREPLACE),
            0)
      << ErrnoName(errno);
  EXPECT_EQ(ReadFile(dir_.Path("c")), "A");
}

// do_renameat2() refuses an existing target before it looks at whether the
// two names are one object, so renaming a name onto itself, or onto a hard
// link of the same file, is EEXIST too (plain rename(2) of those is 0).
TEST_F(DirTest, Renameat2NoreplaceOntoTheSameFile) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  ASSERT_OK(link(dir_.Path("a").c_str(), dir_.Path("hard").c_str()));
  EXPECT_ERRNO(EEXIST, syscall(SYS_renameat2, AT_FDCWD, dir_.Path("a").c_str(), AT_FDCWD,
                               dir_.Path("a").c_str(), RENAME_NOREPLACE));
  EXPECT_ERRNO(EEXIST, syscall(SYS_renameat2, AT_FDCWD, dir_.Path("a").c_str(), AT_FDCWD,
                               dir_.Path("hard").c_str(), RENAME_NOREPLACE));
  EXPECT_OK(rename(dir_.Path("a").c_str(), dir_.Path("a").c_str()));
  EXPECT_EQ(ReadFile(dir_.Path("a")), "A");
  EXPECT_EQ(ReadFile(dir_.Path("hard")), "A");
}

TEST_F(DirTest, Renameat2Exchange) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  ASSERT_OK(mkdir(dir_.Path("b").c_str(), 0755));
  ASSERT_EQ(syscall(SYS_renameat2, AT_FDCWD, dir_.Path("a").c_str(), AT_FDCWD,
                    dir_.Path("b").c_str(), RENAME_EXCHANGE),
            0)
      << ErrnoName(errno);
  EXPECT_TRUE(S_ISDIR(Mode(dir_.Path("a"))));
  EXPECT_EQ(ReadFile(dir_.Path("b")), "A");
  EXPECT_ERRNO(
      ENOENT, syscall(SYS_renameat2, AT_FDCWD, dir_.Path("a").c_str(), AT_FDCWD,
                      dir_.Path("missing").c_str(), RENAME_EXCHANGE));
}

TEST_F(DirTest, Renameat2BadFlagsIsEINVAL) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  EXPECT_ERRNO(EINVAL, syscall(SYS_renameat2, AT_FDCWD, dir_.Path("a").c_str(),
                               AT_FDCWD, dir_.Path("b").c_str(),
                               RENAME_NOREPLACE | RENAME_EXCHANGE));
  EXPECT_ERRNO(EINVAL, syscall(SYS_renameat2, AT_FDCWD, dir_.Path("a").c_str(),
                               AT_FDCWD, dir_.Path("b").c_str(), 0x100));
  EXPECT_TRUE(Exists(dir_.Path("a")));
}

// ---------------------------------------------------------------- link

TEST_F(DirTest, LinkCreatesSecondName) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  ASSERT_OK(link(dir_.Path("a").c_str(), dir_.Path("b").c_str()));
  struct stat st;
  ASSERT_OK(stat(dir_.Path("b").c_str(), &st));
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(ReadFile(dir_.Path("b")), "A");
}

TEST_F(DirTest, LinkErrors) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  ASSERT_TRUE(WriteFile(dir_.Path("b"), "B"));
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  EXPECT_ERRNO(EEXIST, link(dir_.Path("a").c_str(), dir_.Path("b").c_str()));
  EXPECT_ERRNO(ENOENT,
               link(dir_.Path("missing").c_str(), dir_.Path("c").c_str()));
  EXPECT_ERRNO(EPERM, link(dir_.Path("d").c_str(), dir_.Path("d2").c_str()));
  EXPECT_ERRNO(ENOENT,
               link(dir_.Path("a").c_str(), dir_.Path("nodir/c").c_str()));
}

TEST_F(DirTest, LinkatSymlinkFollow) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "F"));
  ASSERT_OK(symlink("f", dir_.Path("link").c_str()));
  // Without AT_SYMLINK_FOLLOW the new name is another link to the symlink.
  ASSERT_OK(linkat(AT_FDCWD, dir_.Path("link").c_str(), AT_FDCWD,
                   dir_.Path("l1").c_str(), 0));
  EXPECT_TRUE(S_ISLNK(Mode(dir_.Path("l1"))));
  ASSERT_OK(linkat(AT_FDCWD, dir_.Path("link").c_str(), AT_FDCWD,
                   dir_.Path("l2").c_str(), AT_SYMLINK_FOLLOW));
  EXPECT_TRUE(S_ISREG(Mode(dir_.Path("l2"))));
  EXPECT_ERRNO(EINVAL, linkat(AT_FDCWD, dir_.Path("f").c_str(), AT_FDCWD,
                              dir_.Path("l3").c_str(), 0x1));
}

TEST_F(DirTest, LinkatRelativeToDirFds) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "F"));
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  ASSERT_OK(linkat(dfd.get(), "f", dfd.get(), "g", 0));
  EXPECT_EQ(ReadFile(dir_.Path("g")), "F");
}

// ---------------------------------------------------------------- symlink

TEST_F(DirTest, SymlinkAndReadlink) {
  ASSERT_OK(symlink("some/target", dir_.Path("link").c_str()));
  char buf[64];
  memset(buf, 'X', sizeof(buf));
  ASSERT_EQ(readlink(dir_.Path("link").c_str(), buf, sizeof(buf)), 11);
  EXPECT_EQ(std::string(buf, 11), "some/target");
  EXPECT_EQ(buf[11], 'X');  // No terminating NUL is written.
}

TEST_F(DirTest, ReadlinkTruncatesToBuffer) {
  ASSERT_OK(symlink("abcdefgh", dir_.Path("link").c_str()));
  char buf[4];
  ASSERT_EQ(readlink(dir_.Path("link").c_str(), buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "abcd");
}

TEST_F(DirTest, ReadlinkErrors) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  ASSERT_OK(symlink("f", dir_.Path("link").c_str()));
  char buf[16];
  EXPECT_ERRNO(EINVAL, readlink(dir_.Path("f").c_str(), buf, sizeof(buf)));
  EXPECT_ERRNO(ENOENT,
               readlink(dir_.Path("missing").c_str(), buf, sizeof(buf)));
  EXPECT_ERRNO(EINVAL,
               syscall(SYS_readlink, dir_.Path("link").c_str(), buf, 0));
}

TEST_F(DirTest, ReadlinkatRelativeAndEmptyPath) {
  ASSERT_OK(symlink("target", dir_.Path("link").c_str()));
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  char buf[16];
  ASSERT_EQ(readlinkat(dfd.get(), "link", buf, sizeof(buf)), 6);
  EXPECT_EQ(std::string(buf, 6), "target");
}

TEST_F(DirTest, SymlinkErrors) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  EXPECT_ERRNO(EEXIST, symlink("x", dir_.Path("f").c_str()));
  EXPECT_ERRNO(ENOENT, symlink("x", dir_.Path("nodir/l").c_str()));
  EXPECT_ERRNO(ENOENT, symlink("", dir_.Path("l").c_str()));
}

TEST_F(DirTest, SymlinkatRelativeToDirFd) {
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  ASSERT_OK(symlinkat("t", dfd.get(), "l"));
  EXPECT_TRUE(S_ISLNK(Mode(dir_.Path("l"))));
}

TEST_F(DirTest, RelativeSymlinkResolvesFromItsDirectory) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(dir_.Path("d/f"), "inner"));
  ASSERT_OK(symlink("d/f", dir_.Path("l").c_str()));
  ASSERT_OK(symlink("../d", dir_.Path("d/up").c_str()));
  EXPECT_EQ(ReadFile(dir_.Path("l")), "inner");
  EXPECT_EQ(ReadFile(dir_.Path("d/up/f")), "inner");
}

// ---------------------------------------------------------------- cwd

class CwdTest : public DirTest {
 protected:
  void SetUp() override {
    saved_ = open(".", O_RDONLY | O_DIRECTORY);
    ASSERT_GE(saved_, 0) << ErrnoName(errno);
    char* real = realpath(dir_.path().c_str(), nullptr);
    ASSERT_NE(real, nullptr);
    real_ = real;
    free(real);
  }
  void TearDown() override {
    EXPECT_OK(fchdir(saved_));
    close(saved_);
  }

  int saved_ = -1;
  std::string real_;  // dir_ without symlinks, as getcwd reports it.
};

TEST_F(CwdTest, ChdirAndGetcwd) {
  ASSERT_OK(chdir(dir_.path().c_str()));
  char buf[PATH_MAX];
  ASSERT_NE(getcwd(buf, sizeof(buf)), nullptr) << ErrnoName(errno);
  EXPECT_EQ(std::string(buf), real_);
  // Relative paths now resolve from there.
  ASSERT_TRUE(WriteFile("rel", "R"));
  EXPECT_EQ(ReadFile(dir_.Path("rel")), "R");
}

TEST_F(CwdTest, ChdirDotDot) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  ASSERT_OK(chdir(dir_.Path("d").c_str()));
  ASSERT_OK(chdir(".."));
  char buf[PATH_MAX];
  ASSERT_NE(getcwd(buf, sizeof(buf)), nullptr);
  EXPECT_EQ(std::string(buf), real_);
}

TEST_F(CwdTest, Fchdir) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  FileDescriptor dfd(open(dir_.Path("d").c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  ASSERT_OK(fchdir(dfd.get()));
  char buf[PATH_MAX];
  ASSERT_NE(getcwd(buf, sizeof(buf)), nullptr);
  EXPECT_EQ(std::string(buf), real_ + "/d");
}

TEST_F(CwdTest, ChdirErrors) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  EXPECT_ERRNO(ENOTDIR, chdir(dir_.Path("f").c_str()));
  EXPECT_ERRNO(ENOENT, chdir(dir_.Path("missing").c_str()));
  FileDescriptor ffd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(ffd.get(), 0);
  EXPECT_ERRNO(ENOTDIR, fchdir(ffd.get()));
  EXPECT_ERRNO(EBADF, fchdir(-1));
}

TEST_F(CwdTest, GetcwdSmallBufferIsERANGE) {
  ASSERT_OK(chdir(dir_.path().c_str()));
  char buf[PATH_MAX];
  // The raw syscall returns the length including the NUL.
  EXPECT_EQ(syscall(SYS_getcwd, buf, sizeof(buf)),
            static_cast<long>(real_.size() + 1));
  EXPECT_ERRNO(ERANGE, syscall(SYS_getcwd, buf, real_.size()));
  EXPECT_ERRNO(ERANGE, syscall(SYS_getcwd, buf, 1));
  EXPECT_ERRNO(ERANGE, getcwd(buf, 1) == nullptr ? -1 : 0);
}

TEST_F(CwdTest, GetcwdOfRemovedDirectory) {
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0755));
  ASSERT_OK(chdir(dir_.Path("d").c_str()));
  ASSERT_OK(rmdir(dir_.Path("d").c_str()));
  char buf[PATH_MAX];
  // Linux: the raw syscall fails with ENOENT once the directory is unlinked.
  EXPECT_ERRNO(ENOENT, syscall(SYS_getcwd, buf, sizeof(buf)));
}

// ---------------------------------------------------------------- getdents64

std::map<std::string, unsigned char> ListDir(int fd, int bufsize = 4096) {
  std::map<std::string, unsigned char> out;
  std::string buf(bufsize, '\0');
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf.data(), buf.size());
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf.data() + off);
      out[d->d_name] = d->d_type;
      off += d->d_reclen;
    }
  }
  return out;
}

TEST_F(DirTest, Getdents64ListsEntries) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), ""));
  ASSERT_TRUE(WriteFile(dir_.Path("b"), ""));
  ASSERT_OK(mkdir(dir_.Path("c").c_str(), 0755));
  ASSERT_OK(symlink("a", dir_.Path("l").c_str()));
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(fd.get(), 0);
  auto entries = ListDir(fd.get());
  ASSERT_EQ(entries.size(), 6u);
  for (const char* name : {".", "..", "a", "b", "c", "l"}) {
    EXPECT_EQ(entries.count(name), 1u) << name;
  }
  // d_type may be DT_UNKNOWN on some file systems, but never wrong.
  auto check = [&](const char* name, unsigned char want) {
    EXPECT_TRUE(entries[name] == want || entries[name] == DT_UNKNOWN)
        << name << ": " << int(entries[name]);
  };
  check("a", DT_REG);
  check("c", DT_DIR);
  check("l", DT_LNK);
  check(".", DT_DIR);
}

TEST_F(DirTest, Getdents64SmallBuffersStillListEverything) {
  for (int i = 0; i < 20; i++) {
    ASSERT_TRUE(WriteFile(dir_.Path("file" + std::to_string(i)), ""));
  }
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(fd.get(), 0);
  auto entries = ListDir(fd.get(), 64);
  EXPECT_EQ(entries.size(), 22u);
}

TEST_F(DirTest, Getdents64AtEndReturnsZeroAndRewinds) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(ListDir(fd.get()).size(), 2u);
  char buf[4096];
  EXPECT_EQ(syscall(SYS_getdents64, fd.get(), buf, sizeof(buf)), 0);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  EXPECT_EQ(ListDir(fd.get()).size(), 2u);
}

TEST_F(DirTest, Getdents64Errors) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(fd.get(), 0);
  char buf[4096];
  EXPECT_ERRNO(EINVAL, syscall(SYS_getdents64, fd.get(), buf, 1));
  EXPECT_ERRNO(EBADF, syscall(SYS_getdents64, -1, buf, sizeof(buf)));
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  FileDescriptor ffd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(ffd.get(), 0);
  EXPECT_ERRNO(ENOTDIR, syscall(SYS_getdents64, ffd.get(), buf, sizeof(buf)));
}

TEST_F(DirTest, OpendirReaddir) {
  ASSERT_TRUE(WriteFile(dir_.Path("x"), ""));
  DIR* d = opendir(dir_.path().c_str());
  ASSERT_NE(d, nullptr);
  int count = 0;
  bool saw_x = false;
  while (struct dirent* e = readdir(d)) {
    count++;
    if (std::string(e->d_name) == "x") saw_x = true;
  }
  closedir(d);
  EXPECT_EQ(count, 3);
  EXPECT_TRUE(saw_x);
}

// ---------------------------------------------------------------- chmod

TEST_F(DirTest, ChmodSetsPermissionBits) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "", 0600));
  ASSERT_OK(chmod(dir_.Path("f").c_str(), 0751));
  EXPECT_EQ(Mode(dir_.Path("f")) & 07777, 0751u);
  ASSERT_OK(chmod(dir_.Path("f").c_str(), 04755));
  EXPECT_EQ(Mode(dir_.Path("f")) & 07777, 04755u);
  ASSERT_OK(chmod(dir_.Path("f").c_str(), 0));
  EXPECT_EQ(Mode(dir_.Path("f")) & 07777, 0u);
  EXPECT_TRUE(S_ISREG(Mode(dir_.Path("f"))));
}

TEST_F(DirTest, ChmodFollowsSymlink) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "", 0600));
  ASSERT_OK(symlink("f", dir_.Path("l").c_str()));
  ASSERT_OK(chmod(dir_.Path("l").c_str(), 0640));
  EXPECT_EQ(Mode(dir_.Path("f")) & 07777, 0640u);
  EXPECT_EQ(Mode(dir_.Path("l")) & 07777, 0777u);
}

TEST_F(DirTest, FchmodAndFchmodat) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "", 0600));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(fchmod(fd.get(), 0604));
  EXPECT_EQ(Mode(dir_.Path("f")) & 07777, 0604u);
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  ASSERT_OK(fchmodat(dfd.get(), "f", 0640, 0));
  EXPECT_EQ(Mode(dir_.Path("f")) & 07777, 0640u);
}

TEST_F(DirTest, ChmodErrors) {
  EXPECT_ERRNO(ENOENT, chmod(dir_.Path("missing").c_str(), 0600));
  EXPECT_ERRNO(EBADF, fchmod(-1, 0600));
  EXPECT_ERRNO(EBADF, syscall(SYS_fchmodat, -1, "f", 0600));
}

// ---------------------------------------------------------------- chown

class ChownTest : public DirTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "chown to other ids needs root";
    ASSERT_TRUE(WriteFile(dir_.Path("f"), "", 0644));
  }
  std::pair<uid_t, gid_t> Owner(const std::string& path) {
    struct stat st = {};
    lstat(path.c_str(), &st);
    return {st.st_uid, st.st_gid};
  }
};

TEST_F(ChownTest, Chown) {
  ASSERT_OK(chown(dir_.Path("f").c_str(), 1234, 5678));
  EXPECT_EQ(Owner(dir_.Path("f")), std::make_pair(uid_t{1234}, gid_t{5678}));
  // -1 leaves that id alone.
  ASSERT_OK(chown(dir_.Path("f").c_str(), -1, 42));
  EXPECT_EQ(Owner(dir_.Path("f")), std::make_pair(uid_t{1234}, gid_t{42}));
  ASSERT_OK(chown(dir_.Path("f").c_str(), 7, -1));
  EXPECT_EQ(Owner(dir_.Path("f")), std::make_pair(uid_t{7}, gid_t{42}));
}

TEST_F(ChownTest, FchownAndFchownat) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(fchown(fd.get(), 11, 12));
  EXPECT_EQ(Owner(dir_.Path("f")), std::make_pair(uid_t{11}, gid_t{12}));
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  ASSERT_OK(fchownat(dfd.get(), "f", 21, 22, 0));
  EXPECT_EQ(Owner(dir_.Path("f")), std::make_pair(uid_t{21}, gid_t{22}));
  ASSERT_OK(fchownat(fd.get(), "", 31, 32, AT_EMPTY_PATH));
  EXPECT_EQ(Owner(dir_.Path("f")), std::make_pair(uid_t{31}, gid_t{32}));
  EXPECT_ERRNO(EINVAL, fchownat(dfd.get(), "f", 1, 1, 0x1));
  EXPECT_ERRNO(EBADF, fchown(-1, 1, 1));
}

TEST_F(ChownTest, LchownChangesLinkNotTarget) {
  ASSERT_OK(symlink("f", dir_.Path("l").c_str()));
  auto before = Owner(dir_.Path("f"));
  ASSERT_OK(lchown(dir_.Path("l").c_str(), 99, 98));
  EXPECT_EQ(Owner(dir_.Path("l")), std::make_pair(uid_t{99}, gid_t{98}));
  EXPECT_EQ(Owner(dir_.Path("f")), before);
  ASSERT_OK(
      fchownat(AT_FDCWD, dir_.Path("l").c_str(), 77, 76, AT_SYMLINK_NOFOLLOW));
  EXPECT_EQ(Owner(dir_.Path("l")), std::make_pair(uid_t{77}, gid_t{76}));
  EXPECT_EQ(Owner(dir_.Path("f")), before);
  // chown follows the link.
  ASSERT_OK(chown(dir_.Path("l").c_str(), 55, 54));
  EXPECT_EQ(Owner(dir_.Path("f")), std::make_pair(uid_t{55}, gid_t{54}));
}

TEST_F(ChownTest, ChownClearsSetuidBit) {
  // chown(2): the set-user-ID bit is cleared when the owner of an executable
  // changes, even when root changes it.
  ASSERT_OK(chmod(dir_.Path("f").c_str(), 04755));
  ASSERT_OK(chown(dir_.Path("f").c_str(), 1, 1));
  EXPECT_EQ(Mode(dir_.Path("f")) & 07777, 0755u);
}

TEST_F(ChownTest, ChownMissingIsENOENT) {
  EXPECT_ERRNO(ENOENT, chown(dir_.Path("missing").c_str(), 1, 1));
}

// ---------------------------------------------------------------- utimensat

TEST_F(DirTest, UtimensatSetsExactTimes) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  struct timespec times[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
  ASSERT_OK(utimensat(AT_FDCWD, dir_.Path("f").c_str(), times, 0));
  struct stat st;
  ASSERT_OK(stat(dir_.Path("f").c_str(), &st));
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
}

TEST_F(DirTest, UtimensatOmitAndNow) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, dir_.Path("f").c_str(), old, 0));
  struct timespec before;
  ASSERT_OK(clock_gettime(CLOCK_REALTIME, &before));
  struct timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  ASSERT_OK(utimensat(AT_FDCWD, dir_.Path("f").c_str(), times, 0));
  struct stat st;
  ASSERT_OK(stat(dir_.Path("f").c_str(), &st));
  EXPECT_EQ(st.st_atim.tv_sec, 1000000000);
  // File times come from a coarse clock: allow a second of slack.
  EXPECT_GE(st.st_mtim.tv_sec, before.tv_sec - 1);
  EXPECT_LE(st.st_mtim.tv_sec, before.tv_sec + 5);
}

TEST_F(DirTest, UtimensatNullMeansNow) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, dir_.Path("f").c_str(), old, 0));
  time_t now = time(nullptr);
  ASSERT_OK(utimensat(AT_FDCWD, dir_.Path("f").c_str(), nullptr, 0));
  struct stat st;
  ASSERT_OK(stat(dir_.Path("f").c_str(), &st));
  EXPECT_GE(st.st_atim.tv_sec, now - 1);
  EXPECT_GE(st.st_mtim.tv_sec, now - 1);
}

TEST_F(DirTest, UtimensatSymlinkNofollow) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  ASSERT_OK(symlink("f", dir_.Path("l").c_str()));
  struct timespec times[2] = {{2000000, 0}, {3000000, 0}};
  ASSERT_OK(
      utimensat(AT_FDCWD, dir_.Path("l").c_str(), times, AT_SYMLINK_NOFOLLOW));
  struct stat link_st, file_st;
  ASSERT_OK(lstat(dir_.Path("l").c_str(), &link_st));
  ASSERT_OK(stat(dir_.Path("f").c_str(), &file_st));
  EXPECT_EQ(link_st.st_mtim.tv_sec, 3000000);
  EXPECT_NE(file_st.st_mtim.tv_sec, 3000000);
}

TEST_F(DirTest, FutimensOnFd) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  struct timespec times[2] = {{5000, 0}, {6000, 0}};
  ASSERT_OK(futimens(fd.get(), times));
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_atim.tv_sec, 5000);
  EXPECT_EQ(st.st_mtim.tv_sec, 6000);
}

TEST_F(DirTest, UtimensatErrors) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
  EXPECT_ERRNO(EINVAL, utimensat(AT_FDCWD, dir_.Path("f").c_str(), bad, 0));
  struct timespec neg[2] = {{0, -1}, {0, 0}};
  EXPECT_ERRNO(EINVAL, utimensat(AT_FDCWD, dir_.Path("f").c_str(), neg, 0));
  EXPECT_ERRNO(ENOENT,
               utimensat(AT_FDCWD, dir_.Path("missing").c_str(), nullptr, 0));
  EXPECT_ERRNO(EINVAL,
               utimensat(AT_FDCWD, dir_.Path("f").c_str(), nullptr, 0x1));
}

TEST_F(DirTest, WriteUpdatesMtime) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), ""));
  struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
  ASSERT_OK(utimensat(AT_FDCWD, dir_.Path("f").c_str(), old, 0));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_WRONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(write(fd.get(), "x", 1), 1);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_GT(st.st_mtim.tv_sec, 1000000000);
}

}  // namespace
}  // namespace syscall_test
