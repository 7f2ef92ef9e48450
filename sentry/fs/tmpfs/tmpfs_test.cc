// Tmpfs files take their host memfd with their first data (tmpfs.h): an
// empty file holds none, and reads, seeks, stat and truncate to 0 of one
// behave as for an empty file.
#include "sentry/fs/tmpfs/tmpfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

std::shared_ptr<TmpfsInode> NewFile(const std::shared_ptr<TmpfsInode>& root,
                                    const std::string& name) {
  auto made = root->Create(name, S_IFREG | 0644, FsCreds{});
  EXPECT_TRUE(made.ok());
  return std::static_pointer_cast<TmpfsInode>(*made);
}

TEST(TmpfsLazyMemfdTest, EmptyFilesHoldNoHostFd) {
  auto root = NewTmpfs(0755);
  const int64_t before = TmpfsMemfds();
  // More empty files than the whole budget: none takes a host fd.
  const int64_t n = TmpfsMemfdLimit() + 16;
  for (int64_t i = 0; i < n; ++i) {
    auto f = NewFile(root, "e" + std::to_string(i));
    ASSERT_EQ(f->memfd(), -1);
  }
  EXPECT_EQ(TmpfsMemfds(), before);
}

TEST(TmpfsLazyMemfdTest, AnEmptyFileReadsSeeksAndStatsAsEmpty) {
  auto root = NewTmpfs(0755);
  auto node = NewFile(root, "f");
  TmpfsFile file(O_RDWR, nullptr, node);
  char buf[8];
  auto n = file.ReadAt(buf, sizeof(buf), 0);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  auto end = file.Seek(0, SEEK_END);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, 0);
  EXPECT_EQ(file.Seek(0, SEEK_DATA).error(), Errno(ENXIO));
  EXPECT_EQ(file.Seek(0, SEEK_HOLE).error(), Errno(ENXIO));
  auto st = node->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_size, 0);
  EXPECT_TRUE(file.Truncate(0).ok());  // stays without a memfd
  EXPECT_EQ(node->memfd(), -1);
}

TEST(TmpfsLazyMemfdTest, FirstDataTakesTheMemfd) {
  auto root = NewTmpfs(0755);
  const int64_t before = TmpfsMemfds();
  {
    auto node = NewFile(root, "f");
    TmpfsFile file(O_RDWR, nullptr, node);
    auto w = file.WriteAt("hello", 5, 3);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(*w, 5u);
    EXPECT_GE(node->memfd(), 0);
    EXPECT_EQ(TmpfsMemfds(), before + 1);
    char buf[16] = {};
    auto n = file.ReadAt(buf, sizeof(buf), 0);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(std::string(buf, *n), std::string("\0\0\0hello", 8));
    EXPECT_EQ(*node->DataSize(), 8);

    // A truncate to a size and a mapping also take one.
    auto grown = NewFile(root, "g");
    TmpfsFile gfile(O_RDWR, nullptr, grown);
    ASSERT_TRUE(gfile.Truncate(4096).ok());
    EXPECT_EQ(grown->Stat()->st_size, 4096);
    auto mapped = NewFile(root, "m");
    TmpfsFile mfile(O_RDWR, nullptr, mapped);
    auto fd = mfile.MappableFd();
    ASSERT_TRUE(fd.ok());
    EXPECT_EQ(*fd, mapped->memfd());
    EXPECT_EQ(TmpfsMemfds(), before + 3);
    for (const char* name : {"f", "g", "m"}) ASSERT_TRUE(root->Unlink(name).ok());
  }
  // Each gave its fd back with its last reference.
  EXPECT_EQ(TmpfsMemfds(), before);
}

}  // namespace
}  // namespace seedvisor::sentry
