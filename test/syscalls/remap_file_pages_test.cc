// remap_file_pages(2) as Linux emulates it since 4.0: a page range of a
// shared file mapping shows other pages of the file (a new mapping at the
// same place), and everything but a shared file mapping is EINVAL.
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr size_t kPage = 4096;
constexpr int kPages = 4;

class RemapFilePages : public ::testing::Test {
 protected:
  void SetUp() override {
    fd_ = FileDescriptor(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
    ASSERT_OK(fd_.get());
    // Page i holds the byte 'a' + i.
    for (int i = 0; i < kPages; ++i) {
      std::string page(kPage, static_cast<char>('a' + i));
      ASSERT_EQ(pwrite(fd_.get(), page.data(), kPage, i * kPage), static_cast<ssize_t>(kPage));
    }
    map_ = static_cast<char*>(
        mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0));
    ASSERT_NE(map_, MAP_FAILED);
  }
  void TearDown() override {
    if (map_ != MAP_FAILED) munmap(map_, kPages * kPage);
  }
  TempDir dir_;
  FileDescriptor fd_;
  char* map_ = static_cast<char*>(MAP_FAILED);
};

TEST_F(RemapFilePages, PagesShowOtherPagesOfTheFile) {
  // Page 0 shows file page 3, pages 1-2 show file pages 0-1.
  ASSERT_EQ(remap_file_pages(map_, kPage, 0, 3, 0), 0) << ErrnoName(errno);
  ASSERT_EQ(remap_file_pages(map_ + kPage, 2 * kPage, 0, 0, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(map_[0], 'd');
  EXPECT_EQ(map_[kPage - 1], 'd');
  EXPECT_EQ(map_[kPage], 'a');
  EXPECT_EQ(map_[2 * kPage], 'b');
  EXPECT_EQ(map_[3 * kPage], 'd');  // untouched
  // Writes go to the file page shown.
  map_[0] = 'X';
  char c = 0;
  ASSERT_EQ(pread(fd_.get(), &c, 1, 3 * kPage), 1);
  EXPECT_EQ(c, 'X');
  // An unaligned start and size are rounded down to pages.
  ASSERT_EQ(remap_file_pages(map_ + 10, kPage + 10, 0, 2, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(map_[0], 'c');
  EXPECT_EQ(map_[kPage], 'a');
  // Over the whole mapping, even after it was split into VMAs.
  ASSERT_EQ(remap_file_pages(map_, kPages * kPage, 0, 0, 0), 0) << ErrnoName(errno);
  for (int i = 0; i < kPages; ++i) {
    EXPECT_EQ(map_[i * kPage], i == 3 ? 'X' : 'a' + i) << i;
  }
}

TEST_F(RemapFilePages, OnlySharedFileMappings) {
  // prot must be 0.
  EXPECT_ERRNO(EINVAL, remap_file_pages(map_, kPage, PROT_READ, 1, 0));
  // A size under one page is none.
  EXPECT_ERRNO(EINVAL, remap_file_pages(map_, kPage - 1, 0, 1, 0));
  // Past the end of the mapping into unmapped memory.
  void* hole = mmap(nullptr, 2 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(hole, MAP_FAILED);
  ASSERT_OK(munmap(hole, 2 * kPage));
  EXPECT_ERRNO(EINVAL, remap_file_pages(hole, kPage, 0, 0, 0));
  EXPECT_ERRNO(EINVAL, remap_file_pages(map_ + (kPages - 1) * kPage, 2 * kPage, 0, 0, 0));
  // A private file mapping and anonymous private memory.
  char* priv =
      static_cast<char*>(mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd_.get(), 0));
  ASSERT_NE(priv, MAP_FAILED);
  EXPECT_ERRNO(EINVAL, remap_file_pages(priv, kPage, 0, 1, 0));
  munmap(priv, kPage);
  char* anon = static_cast<char*>(
      mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(anon, MAP_FAILED);
  EXPECT_ERRNO(EINVAL, remap_file_pages(anon, kPage, 0, 1, 0));
  munmap(anon, kPage);
  // A page offset that wraps.
  EXPECT_ERRNO(EINVAL, remap_file_pages(map_, 2 * kPage, 0, SIZE_MAX, 0));
  // Nothing changed.
  for (int i = 0; i < kPages; ++i) EXPECT_EQ(map_[i * kPage], 'a' + i) << i;
}

// Shared anonymous memory is a shmem file: its pages can be rearranged too.
TEST(RemapFilePagesShared, SharedAnonymousMemory) {
  char* m = static_cast<char*>(
      mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  m[0] = 'p';
  m[kPage] = 'q';
  ASSERT_EQ(remap_file_pages(m, kPage, 0, 1, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(m[0], 'q');
  EXPECT_EQ(m[kPage], 'q');
  munmap(m, 2 * kPage);
}

// A SysV attach can be remapped while its segment exists. Once the segment
// is removed (IPC_RMID), the unmap that remap_file_pages() begins with drops
// the last attach, the segment goes (shm_destroy()) and the new mapping
// fails (shm_mmap(): EINVAL, or EIDRM on kernels that check the id first);
// the range is left unmapped. LTP's shmctl05 loops on remap_file_pages()
// until it fails: a remap that kept the segment alive hung it.
TEST(RemapFilePagesSysv, RemovedSegmentFailsOnceItsLastAttachGoes) {
  const int id = shmget(IPC_PRIVATE, 2 * kPage, IPC_CREAT | 0600);
  ASSERT_OK(id);
  char* m = static_cast<char*>(shmat(id, nullptr, 0));
  ASSERT_NE(m, reinterpret_cast<char*>(-1)) << ErrnoName(errno);
  m[0] = 'x';
  m[kPage] = 'y';
  ASSERT_EQ(remap_file_pages(m, kPage, 0, 1, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(m[0], 'y');
  ASSERT_OK(shmctl(id, IPC_RMID, nullptr));
  // A second attach (the other page, still mapped) outlives the first
  // page's unmap: the segment stays and the remap succeeds.
  ASSERT_EQ(remap_file_pages(m, kPage, 0, 0, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(m[0], 'x');
  // The whole attach: nothing outlives it.
  errno = 0;
  EXPECT_EQ(remap_file_pages(m, 2 * kPage, 0, 0, 0), -1);
  EXPECT_TRUE(errno == EINVAL || errno == EIDRM) << ErrnoName(errno);
  struct shmid_ds ds;
  EXPECT_EQ(shmctl(id, IPC_STAT, &ds), -1);  // the id is gone
  EXPECT_EQ(msync(m, 2 * kPage, MS_ASYNC), -1);  // and so is the mapping
  EXPECT_EQ(errno, ENOMEM);
}

}  // namespace
}  // namespace syscall_test
