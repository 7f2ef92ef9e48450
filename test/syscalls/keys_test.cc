// The kernel key retention service (keyrings(7)): add_key(2),
// request_key(2) and keyctl(2), natively and in the sandbox. Each test
// first joins a new anonymous session keyring, so natively it never sees
// (or leaves) keys of the host's session.
#include <fcntl.h>
#include <linux/keyctl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace {

using syscall_test::RunInChild;

long AddKey(const char* type, const char* desc, const void* payload, size_t plen, int32_t ring) {
  return syscall(SYS_add_key, type, desc, payload, plen, ring);
}

long RequestKey(const char* type, const char* desc, const char* callout, int32_t dest) {
  return syscall(SYS_request_key, type, desc, callout, dest);
}

long Keyctl(int op, unsigned long a2 = 0, unsigned long a3 = 0, unsigned long a4 = 0,
            unsigned long a5 = 0) {
  return syscall(SYS_keyctl, op, a2, a3, a4, a5);
}

int32_t NewSession() {
  long id = Keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0);
  EXPECT_GT(id, 0) << strerror(errno);
  return static_cast<int32_t>(id);
}

std::string ReadKey(int32_t id) {
  std::string buf(65536, '\0');
  long n = Keyctl(KEYCTL_READ, id, reinterpret_cast<unsigned long>(buf.data()), buf.size());
  EXPECT_GE(n, 0) << strerror(errno);
  buf.resize(n < 0 ? 0 : n);
  return buf;
}

std::vector<int32_t> ReadKeyring(int32_t id) {
  std::string s = ReadKey(id);
  std::vector<int32_t> ids(s.size() / 4);
  memcpy(ids.data(), s.data(), ids.size() * 4);
  return ids;
}

std::string Describe(int32_t id) {
  char buf[4096];
  long n = Keyctl(KEYCTL_DESCRIBE, id, reinterpret_cast<unsigned long>(buf), sizeof(buf));
  EXPECT_GT(n, 0) << strerror(errno);
  return n > 0 ? std::string(buf, n - 1) : "";
}

std::string FileText(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// In the copy ExecKeepsOnlyTheSessionKeyring execs, before gtest starts:
// exits with a bit set for each keyring that is not as execve(2) leaves it.
[[maybe_unused]] const int kExecCheck = [] {
  const char* session = getenv("KEYS_TEST_EXEC_SESSION");
  if (session == nullptr) return 0;
  int code = 0;
  if (Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0) != -1 || errno != ENOKEY) code |= 1;
  if (Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 0) != -1 || errno != ENOKEY) code |= 2;
  if (Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) != atol(session)) code |= 4;
  _exit(code);
}();

// Every test runs in a child, in a session keyring of its own.
void InChild(void (*body)()) {
  EXPECT_EQ(RunInChild([body] {
              NewSession();
              body();
              return ::testing::Test::HasFailure() ? 1 : 0;
            }),
            0);
}

// Permission bits (keyutils.h's names).
constexpr uint32_t KEY_POS_VIEW = 0x01000000, KEY_POS_READ = 0x02000000,
                   KEY_POS_SEARCH = 0x08000000, KEY_POS_SETATTR = 0x20000000,
                   KEY_POS_ALL = 0x3f000000, KEY_USR_ALL = 0x003f0000, KEY_OTH_ALL = 0x0000003f;

TEST(KeysTest, UserKeyAddReadUpdate) {
  InChild([] {
    long id = AddKey("user", "k1", "hello", 5, KEY_SPEC_SESSION_KEYRING);
    ASSERT_GT(id, 0) << strerror(errno);
    EXPECT_EQ(ReadKey(id), "hello");
    // The same type and description in the same keyring: updated in place.
    EXPECT_EQ(AddKey("user", "k1", "bye", 3, KEY_SPEC_SESSION_KEYRING), id);
    EXPECT_EQ(ReadKey(id), "bye");
    EXPECT_EQ(Keyctl(KEYCTL_UPDATE, id, reinterpret_cast<unsigned long>("again"), 5), 0);
    EXPECT_EQ(ReadKey(id), "again");
    EXPECT_EQ(ReadKeyring(KEY_SPEC_SESSION_KEYRING), std::vector<int32_t>{static_cast<int32_t>(id)});
    // A buffer too small: the full length, nothing past the buffer.
    char small[8] = "xxxxxxx";
    EXPECT_EQ(Keyctl(KEYCTL_READ, id, reinterpret_cast<unsigned long>(small), 2), 5);
    EXPECT_EQ(std::string(small + 2), "xxxxx");
    EXPECT_EQ(Keyctl(KEYCTL_READ, id, 0, 0), 5);
    EXPECT_EQ(Describe(static_cast<int32_t>(id)),
              "user;" + std::to_string(geteuid()) + ";" + std::to_string(getegid()) +
                  ";3f010000;k1");
  });
}

TEST(KeysTest, AddKeyRefusals) {
  InChild([] {
    char big[1 << 20];
    EXPECT_ERRNO(EINVAL, AddKey("big_key", "b", big, 1 << 20, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EINVAL, AddKey("user", "u", big, 32768, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EINVAL, AddKey("user", "u", big, 0, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EINVAL, AddKey("keyring", "r", big, 1, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EINVAL, AddKey("keyring", nullptr, nullptr, 0, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EINVAL, AddKey("keyring", "", nullptr, 0, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(ENODEV, AddKey("no_such_type", "x", "p", 1, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EPERM, AddKey(".request_key_auth", "x", "p", 1, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EPERM, AddKey("keyring", ".mine", nullptr, 0, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EINVAL, AddKey("", "x", "p", 1, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EFAULT, AddKey("user", "x", nullptr, 64, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EINVAL, AddKey("logon", "nocolon", "p", 1, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EINVAL, AddKey("logon", ":x", "p", 1, KEY_SPEC_SESSION_KEYRING));
    EXPECT_ERRNO(EINVAL, AddKey("user", "x", "p", 1, 0));
    EXPECT_ERRNO(ENOKEY, AddKey("user", "x", "p", 1, 0x7ffffff0));
    long u = AddKey("user", "plain", "p", 1, KEY_SPEC_SESSION_KEYRING);
    ASSERT_GT(u, 0);
    EXPECT_ERRNO(ENOTDIR, AddKey("user", "x", "p", 1, static_cast<int32_t>(u)));
  });
}

TEST(KeysTest, LogonKeysAreNotReadable) {
  InChild([] {
    long id = AddKey("logon", "svc:name", "secret", 6, KEY_SPEC_SESSION_KEYRING);
    ASSERT_GT(id, 0) << strerror(errno);
    char buf[16];
    EXPECT_ERRNO(EOPNOTSUPP, Keyctl(KEYCTL_READ, id, reinterpret_cast<unsigned long>(buf), 16));
    EXPECT_EQ(Describe(static_cast<int32_t>(id)).substr(0, 6), "logon;");
    EXPECT_NE(Describe(static_cast<int32_t>(id)).find(";3d010000;svc:name"), std::string::npos);
  });
}

TEST(KeysTest, KeyringReplacesSameDescriptionAndRefusesCycles) {
  InChild([] {
    long a = AddKey("keyring", "ring", nullptr, 0, KEY_SPEC_SESSION_KEYRING);
    long b = AddKey("keyring", "ring", nullptr, 0, KEY_SPEC_SESSION_KEYRING);
    ASSERT_GT(a, 0);
    ASSERT_GT(b, 0);
    EXPECT_NE(a, b);  // keyrings are not updated: the new one takes the link
    EXPECT_EQ(ReadKeyring(KEY_SPEC_SESSION_KEYRING), std::vector<int32_t>{static_cast<int32_t>(b)});
    long inner = AddKey("keyring", "inner", nullptr, 0, static_cast<int32_t>(b));
    ASSERT_GT(inner, 0);
    EXPECT_ERRNO(EDEADLK, Keyctl(KEYCTL_LINK, b, inner));
    EXPECT_ERRNO(EDEADLK, Keyctl(KEYCTL_LINK, b, b));
    long k = AddKey("user", "leaf", "v", 1, static_cast<int32_t>(inner));
    ASSERT_GT(k, 0);
    EXPECT_ERRNO(ENOTDIR, Keyctl(KEYCTL_LINK, inner, k));
    EXPECT_ERRNO(ENOENT, Keyctl(KEYCTL_UNLINK, k, b));
    // A search goes down nested keyrings.
    EXPECT_EQ(Keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING, reinterpret_cast<unsigned long>("user"),
                     reinterpret_cast<unsigned long>("leaf"), 0),
              k);
    EXPECT_ERRNO(ENOKEY, Keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING,
                                reinterpret_cast<unsigned long>("user"),
                                reinterpret_cast<unsigned long>("nope"), 0));
    EXPECT_ERRNO(ENOKEY, Keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING,
                                reinterpret_cast<unsigned long>("no_type"),
                                reinterpret_cast<unsigned long>("leaf"), 0));
    EXPECT_EQ(Keyctl(KEYCTL_LINK, k, KEY_SPEC_SESSION_KEYRING), 0);
    EXPECT_EQ(ReadKeyring(KEY_SPEC_SESSION_KEYRING).size(), 2u);
    EXPECT_EQ(Keyctl(KEYCTL_UNLINK, k, KEY_SPEC_SESSION_KEYRING), 0);
    EXPECT_EQ(Keyctl(KEYCTL_CLEAR, inner), 0);
    EXPECT_TRUE(ReadKeyring(static_cast<int32_t>(inner)).empty());
  });
}

TEST(KeysTest, SpecialKeyringsAndInheritance) {
  InChild([] {
    EXPECT_ERRNO(ENOKEY, Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0));
    EXPECT_ERRNO(ENOKEY, Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 0));
    EXPECT_ERRNO(EINVAL, Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_GROUP_KEYRING, 1));
    EXPECT_ERRNO(EINVAL, Keyctl(KEYCTL_GET_KEYRING_ID, 0, 1));
    EXPECT_ERRNO(ENOKEY, Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_REQKEY_AUTH_KEY, 1));
    static long thread_ring, process_ring, session;
    thread_ring = Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 1);
    process_ring = Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1);
    session = Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    ASSERT_GT(thread_ring, 0);
    ASSERT_GT(process_ring, 0);
    EXPECT_EQ(Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 1), thread_ring);
    EXPECT_EQ(Describe(static_cast<int32_t>(thread_ring)).substr(0, 8), "keyring;");
    EXPECT_NE(Describe(static_cast<int32_t>(thread_ring)).find(";3f010000;_tid"),
              std::string::npos);
    EXPECT_NE(Describe(static_cast<int32_t>(session)).find(";3f030000;_ses"), std::string::npos);
    EXPECT_GT(Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0), 0);
    // A thread shares the process keyring, and gets a thread keyring of
    // its own because its creator has one.
    pthread_t th;
    ASSERT_EQ(pthread_create(
                  &th, nullptr,
                  [](void*) -> void* {
                    long own = Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0);
                    EXPECT_GT(own, 0);
                    EXPECT_NE(own, thread_ring);
                    EXPECT_EQ(Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 0),
                              process_ring);
                    EXPECT_EQ(Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0), session);
                    return nullptr;
                  },
                  nullptr),
              0);
    pthread_join(th, nullptr);
    // A child process keeps only the session keyring.
    EXPECT_EQ(RunInChild([] {
                if (Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0) != -1) return 1;
                if (Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 0) != -1) return 2;
                if (Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) != session) return 3;
                return 0;
              }),
              0);
  });
}

TEST(KeysTest, ExecKeepsOnlyTheSessionKeyring) {
  InChild([] {
    ASSERT_GT(Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 1), 0);
    ASSERT_GT(Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1), 0);
    std::string session = std::to_string(Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0));
    pid_t pid = fork();
    if (pid == 0) {
      setenv("KEYS_TEST_EXEC_SESSION", session.c_str(), 1);
      execl("/proc/self/exe", "keys_test", nullptr);
      _exit(100);
    }
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  });
}

TEST(KeysTest, JoinNamedSessionKeyring) {
  InChild([] {
    EXPECT_ERRNO(EPERM, Keyctl(KEYCTL_JOIN_SESSION_KEYRING,
                               reinterpret_cast<unsigned long>(".builtin_trusted_keys")));
    std::string name = "seedvisor-keys-test-" + std::to_string(getpid());
    long id = Keyctl(KEYCTL_JOIN_SESSION_KEYRING, reinterpret_cast<unsigned long>(name.c_str()));
    ASSERT_GT(id, 0) << strerror(errno);
    EXPECT_EQ(Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0), id);
    EXPECT_NE(Describe(static_cast<int32_t>(id)).find(";3f130000;" + name), std::string::npos);
    // Found by name only by who may search it as its owner: joined again
    // it is a new keyring of the same name.
    long other = Keyctl(KEYCTL_JOIN_SESSION_KEYRING, reinterpret_cast<unsigned long>(name.c_str()));
    ASSERT_GT(other, 0);
    EXPECT_NE(other, id);
    ASSERT_EQ(Keyctl(KEYCTL_SETPERM, other, KEY_POS_ALL | KEY_USR_ALL), 0);
    // Held by the thread keyring too, so it outlives the session below.
    ASSERT_EQ(Keyctl(KEYCTL_LINK, other, KEY_SPEC_THREAD_KEYRING), 0);
    id = other;
    // Joining the keyring one has answers 0.
    EXPECT_EQ(Keyctl(KEYCTL_JOIN_SESSION_KEYRING, reinterpret_cast<unsigned long>(name.c_str())),
              0);
    NewSession();
    EXPECT_EQ(Keyctl(KEYCTL_JOIN_SESSION_KEYRING, reinterpret_cast<unsigned long>(name.c_str())),
              id);
  });
}

TEST(KeysTest, PermissionsAndPossession) {
  InChild([] {
    long ring = AddKey("keyring", "ring", nullptr, 0, KEY_SPEC_SESSION_KEYRING);
    long k = AddKey("user", "k", "data", 4, static_cast<int32_t>(ring));
    ASSERT_GT(k, 0);
    // Possessed: readable through the possessor bits alone.
    ASSERT_EQ(Keyctl(KEYCTL_SETPERM, k, KEY_POS_VIEW | KEY_POS_SEARCH | KEY_POS_SETATTR), 0);
    EXPECT_EQ(ReadKey(static_cast<int32_t>(k)), "data");
    char buf[8];
    EXPECT_ERRNO(EACCES, Keyctl(KEYCTL_UPDATE, k, reinterpret_cast<unsigned long>("x"), 1));
    // The keyring no longer searchable: the key is not possessed, and the
    // owner's bits (none) apply, to root too.
    ASSERT_EQ(Keyctl(KEYCTL_SETPERM, ring, KEY_POS_ALL & ~KEY_POS_SEARCH), 0);
    EXPECT_ERRNO(EACCES, Keyctl(KEYCTL_READ, k, reinterpret_cast<unsigned long>(buf), 8));
    EXPECT_ERRNO(EACCES, Keyctl(KEYCTL_DESCRIBE, k, reinterpret_cast<unsigned long>(buf), 8));
    EXPECT_ERRNO(EINVAL, Keyctl(KEYCTL_SETPERM, ring, 0x40000000));
    // A key owned by someone else: only CAP_SYS_ADMIN may set its perms.
    long mine = AddKey("user", "mine", "v", 1, KEY_SPEC_SESSION_KEYRING);
    ASSERT_EQ(Keyctl(KEYCTL_SETPERM, mine, KEY_POS_ALL | KEY_USR_ALL | KEY_OTH_ALL), 0);
    static long shared;
    shared = mine;
    EXPECT_EQ(RunInChild([] {
                if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
                  return 10;
                if (Keyctl(KEYCTL_SETPERM, shared, KEY_POS_ALL) != -1 || errno != EACCES) return 1;
                if (Keyctl(KEYCTL_CHOWN, shared, 65534, -1) != -1 || errno != EACCES) return 2;
                return 0;
              }),
              0);
  });
}

TEST(KeysTest, RevokeTimeoutInvalidate) {
  InChild([] {
    long a = AddKey("user", "a", "v", 1, KEY_SPEC_SESSION_KEYRING);
    long b = AddKey("user", "b", "v", 1, KEY_SPEC_SESSION_KEYRING);
    long c = AddKey("user", "c", "v", 1, KEY_SPEC_SESSION_KEYRING);
    ASSERT_EQ(Keyctl(KEYCTL_REVOKE, a), 0);
    EXPECT_ERRNO(EKEYREVOKED, Keyctl(KEYCTL_READ, a, 0, 0));
    EXPECT_ERRNO(EKEYREVOKED, Keyctl(KEYCTL_REVOKE, a));
    EXPECT_ERRNO(EKEYREVOKED, Keyctl(KEYCTL_DESCRIBE, a, 0, 0));
    EXPECT_ERRNO(EKEYREVOKED, RequestKey("user", "a", nullptr, 0));
    EXPECT_ERRNO(EKEYREVOKED,
                 Keyctl(KEYCTL_SEARCH, KEY_SPEC_SESSION_KEYRING,
                        reinterpret_cast<unsigned long>("user"), reinterpret_cast<unsigned long>("a"), 0));
    ASSERT_EQ(Keyctl(KEYCTL_SET_TIMEOUT, b, 1), 0);
    ASSERT_EQ(Keyctl(KEYCTL_INVALIDATE, c), 0);
    sleep(2);
    EXPECT_ERRNO(EKEYEXPIRED, Keyctl(KEYCTL_READ, b, 0, 0));
    EXPECT_ERRNO(EKEYEXPIRED, Keyctl(KEYCTL_SET_TIMEOUT, b, 10));
    // An invalidated key is gone from its keyrings (the garbage collector
    // has run by now natively).
    EXPECT_ERRNO(ENOKEY, RequestKey("user", "c", nullptr, 0));
    // request_key skips an expired key: nothing found.
    EXPECT_ERRNO(ENOKEY, RequestKey("user", "b", nullptr, 0));
  });
}

TEST(KeysTest, RequestKey) {
  InChild([] {
    long ring = AddKey("keyring", "ltp", nullptr, 0, KEY_SPEC_THREAD_KEYRING);
    ASSERT_GT(ring, 0);
    EXPECT_EQ(RequestKey("keyring", "ltp", nullptr, 0), ring);
    EXPECT_ERRNO(ENOKEY, RequestKey("user", "missing", nullptr, 0));
    EXPECT_ERRNO(ENOKEY, RequestKey("no_such_type", "x", nullptr, 0));
    EXPECT_ERRNO(EPERM, RequestKey(".type", "x", nullptr, KEY_SPEC_PROCESS_KEYRING));
    EXPECT_ERRNO(EFAULT, RequestKey("user", "x", reinterpret_cast<const char*>(-1),
                                    KEY_SPEC_PROCESS_KEYRING));
    EXPECT_ERRNO(EPERM, RequestKey("keyring", "newring", "info", KEY_SPEC_THREAD_KEYRING));
    // With callout info and no key: a negative key in the destination
    // (ENOKEY from a request-key helper without a rule, ENOENT without one).
    long pr = Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1);
    errno = 0;
    EXPECT_EQ(RequestKey("user", "negative", "info", KEY_SPEC_PROCESS_KEYRING), -1);
    EXPECT_TRUE(errno == ENOKEY || errno == ENOENT) << strerror(errno);
    std::vector<int32_t> ids = ReadKeyring(static_cast<int32_t>(pr));
    ASSERT_EQ(ids.size(), 1u);
    char buf[16];
    EXPECT_ERRNO(ENOKEY, Keyctl(KEYCTL_READ, ids[0], reinterpret_cast<unsigned long>(buf), 16));
    EXPECT_ERRNO(ENOKEY, RequestKey("user", "negative", "info", KEY_SPEC_PROCESS_KEYRING));
    // add_key makes the negative key positive.
    EXPECT_EQ(AddKey("user", "negative", "now", 3, static_cast<int32_t>(pr)), ids[0]);
    EXPECT_EQ(RequestKey("user", "negative", nullptr, 0), ids[0]);
    // The default destination must be writable (CVE-2017-17807).
    NewSession();
    ASSERT_EQ(Keyctl(KEYCTL_SETPERM, KEY_SPEC_SESSION_KEYRING,
                     KEY_POS_SEARCH | KEY_POS_READ | KEY_POS_VIEW),
              0);
    ASSERT_EQ(Keyctl(KEYCTL_SET_REQKEY_KEYRING, KEY_REQKEY_DEFL_SESSION_KEYRING),
              KEY_REQKEY_DEFL_DEFAULT);
    EXPECT_ERRNO(EACCES, RequestKey("user", "desc", "info", 0));
    EXPECT_TRUE(ReadKeyring(KEY_SPEC_SESSION_KEYRING).empty());
    EXPECT_EQ(Keyctl(KEYCTL_SET_REQKEY_KEYRING, KEY_REQKEY_DEFL_NO_CHANGE),
              KEY_REQKEY_DEFL_SESSION_KEYRING);
    EXPECT_ERRNO(EINVAL, Keyctl(KEYCTL_SET_REQKEY_KEYRING, KEY_REQKEY_DEFL_GROUP_KEYRING));
    // Setting the thread default keeps the thread keyring (CVE-2017-7472).
    long tid = Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 1);
    ASSERT_GE(Keyctl(KEYCTL_SET_REQKEY_KEYRING, KEY_REQKEY_DEFL_THREAD_KEYRING), 0);
    EXPECT_EQ(Keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0), tid);
    EXPECT_ERRNO(EPERM, Keyctl(KEYCTL_INSTANTIATE, tid, 0, 0, 0));
    EXPECT_ERRNO(EPERM, Keyctl(KEYCTL_NEGATE, tid, 10, 0));
  });
}

TEST(KeysTest, ProcFiles) {
  InChild([] {
    long id = AddKey("user", "proc-visible", "12345", 5, KEY_SPEC_SESSION_KEYRING);
    ASSERT_GT(id, 0);
    char serial[16];
    snprintf(serial, sizeof(serial), "%08lx ", id);
    std::string keys = FileText("/proc/keys");
    size_t at = keys.find(serial);
    ASSERT_NE(at, std::string::npos) << keys;
    std::string line = keys.substr(at, keys.find('\n', at) - at);
    EXPECT_NE(line.find(" I--Q--- "), std::string::npos) << line;
    EXPECT_NE(line.find(" perm 3f010000 "), std::string::npos) << line;
    EXPECT_NE(line.find(" user      proc-visible: 5"), std::string::npos) << line;
    std::string users = FileText("/proc/key-users");
    char uid[16];
    snprintf(uid, sizeof(uid), "%5u: ", geteuid());
    EXPECT_NE(users.find(uid), std::string::npos) << users;
    int maxkeys = atoi(FileText("/proc/sys/kernel/keys/root_maxkeys").c_str());
    EXPECT_GT(maxkeys, 0);
  });
}

// add_key05: a user's keys stop at maxkeys with EDQUOT, reaching it exactly.
TEST(KeysTest, QuotaOfAnUnprivilegedUser) {
  InChild([] {
    ASSERT_EQ(setresgid(65534, 65534, 65534), 0);
    ASSERT_EQ(setresuid(65534, 65534, 65534), 0);
    ASSERT_GT(AddKey("user", "first", "v", 1, KEY_SPEC_THREAD_KEYRING), 0);
    auto parse = [](int* used, int* max) {
      std::istringstream in(FileText("/proc/key-users"));
      std::string line;
      while (std::getline(in, line)) {
        unsigned u;
        int usage, n, ni, q, qmax, b, bmax;
        if (sscanf(line.c_str(), "%u: %d %d/%d %d/%d %d/%d", &u, &usage, &n, &ni, &q, &qmax, &b,
                   &bmax) == 8 &&
            u == 65534) {
          *used = q;
          *max = qmax;
          return true;
        }
      }
      return false;
    };
    int used = 0, max = 0;
    ASSERT_TRUE(parse(&used, &max));
    for (int i = used + 1; i <= max; i++) {
      std::string d = "k" + std::to_string(i);
      ASSERT_GT(AddKey("user", d.c_str(), "v", 1, KEY_SPEC_THREAD_KEYRING), 0) << i;
    }
    EXPECT_ERRNO(EDQUOT, AddKey("user", "one-too-many", "v", 1, KEY_SPEC_THREAD_KEYRING));
    ASSERT_TRUE(parse(&used, &max));
    EXPECT_EQ(used, max);
  });
}

}  // namespace
