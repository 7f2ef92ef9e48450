// WriteAccess: i_writecount's writers and denials per file.
#include "sentry/vfs/write_access.h"

#include <fcntl.h>

#include <memory>
#include <utility>

#include "gtest/gtest.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {
namespace {

// Distinct keys per test: the table is the process's.
FileLockKey KeyOf(const void* fs, ino_t ino) { return FileLockKey{fs, 1, ino}; }

TEST(WriteAccessTest, WritersExcludeDenialsAndBack) {
  const int fs = 0;
  const FileLockKey key = KeyOf(&fs, 1);
  {
    Result<WriteAccess> w1 = WriteAccess::Get(key);
    ASSERT_TRUE(w1.ok());
    Result<WriteAccess> w2 = WriteAccess::Get(key);
    ASSERT_TRUE(w2.ok());
    EXPECT_EQ(WriteAccess::CountOf(key), 2);
    Result<WriteAccess> d = WriteAccess::Deny(key);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.error(), Errno(ETXTBSY));
    EXPECT_EQ(WriteAccess::CountOf(key), 2);  // a refusal changes nothing
  }
  EXPECT_EQ(WriteAccess::CountOf(key), 0);
  {
    Result<WriteAccess> d1 = WriteAccess::Deny(key);
    ASSERT_TRUE(d1.ok());
    Result<WriteAccess> d2 = WriteAccess::Deny(key);  // two processes run it
    ASSERT_TRUE(d2.ok());
    EXPECT_EQ(WriteAccess::CountOf(key), -2);
    Result<WriteAccess> w = WriteAccess::Get(key);
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.error(), Errno(ETXTBSY));
    { WriteAccess gone = std::move(*d1); }
    EXPECT_EQ(WriteAccess::CountOf(key), -1);
    EXPECT_EQ(WriteAccess::Get(key).error(), Errno(ETXTBSY));  // one still runs it
  }
  EXPECT_EQ(WriteAccess::CountOf(key), 0);
  EXPECT_TRUE(WriteAccess::Get(key).ok());
}

TEST(WriteAccessTest, KeysAreSeparate) {
  const int fs = 0;
  Result<WriteAccess> w = WriteAccess::Get(KeyOf(&fs, 1));
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(WriteAccess::Deny(KeyOf(&fs, 2)).ok());
  const int other_fs = 0;
  EXPECT_TRUE(WriteAccess::Deny(KeyOf(&other_fs, 1)).ok());
}

TEST(WriteAccessTest, MovedHoldsAreGivenBackOnce) {
  const int fs = 0;
  const FileLockKey key = KeyOf(&fs, 3);
  Result<WriteAccess> w = WriteAccess::Get(key);
  ASSERT_TRUE(w.ok());
  WriteAccess a = std::move(*w);
  WriteAccess b;
  b = std::move(a);
  EXPECT_EQ(WriteAccess::CountOf(key), 1);
  b = WriteAccess();  // gives the writer back
  EXPECT_EQ(WriteAccess::CountOf(key), 0);
}

TEST(WriteAccessTest, HeldUntilTheDescriptionsLastReference) {
  const int fs = 0;
  const FileLockKey key = KeyOf(&fs, 4);
  auto f = std::make_shared<FileDescription>(O_RDONLY);
  {
    Result<WriteAccess> d = WriteAccess::Deny(key);
    ASSERT_TRUE(d.ok());
    WriteAccess::HoldUntilRelease(*f, std::move(*d));
  }
  EXPECT_EQ(WriteAccess::CountOf(key), -1);
  std::shared_ptr<FileDescription> second_ref = f;  // a fork's address space
  f.reset();
  EXPECT_EQ(WriteAccess::Get(key).error(), Errno(ETXTBSY));
  second_ref.reset();
  EXPECT_EQ(WriteAccess::CountOf(key), 0);
  EXPECT_TRUE(WriteAccess::Get(key).ok());
}

}  // namespace
}  // namespace seedvisor::sentry
