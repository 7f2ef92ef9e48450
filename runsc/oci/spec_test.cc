#include "runsc/oci/spec.h"

#include <sys/resource.h>

#include <cstdlib>
#include <iterator>
#include <string>

#include "gtest/gtest.h"
#include "test/util/temp_dir.h"

namespace seedvisor::oci {
namespace {

constexpr const char* kGood = R"({
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 1000, "gid": 100, "additionalGids": [10, 20]},
    "args": ["sh", "-c", "echo hi"],
    "env": ["PATH=/bin", "A=b=c"],
    "cwd": "/tmp",
    "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"]},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
    "noNewPrivileges": true
  },
  "root": {"path": "/", "readonly": true},
  "hostname": "box",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]},
    {"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
  ],
  "hooks": {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}],
            "poststop": [{"path": "/bin/true"}]},
  "annotations": {"a": "b"},
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "uts"}, {"type": "mount"}],
    "cgroupsPath": "/seedsc/x",
    "resources": {"memory": {"limit": 104857600}, "cpu": {"quota": 50000, "period": 100000},
                  "pids": {"limit": 64}},
    "maskedPaths": ["/proc/kcore"],
    "readonlyPaths": ["/proc/sys"]
  }
})";

std::string Error(const std::string& text) {
  auto s = ParseSpec(text, "");
  return s.ok() ? "OK" : std::string(s.status().message());
}

// Replaces the first occurrence of `from` in kGood.
std::string Good(const std::string& from, const std::string& to) {
  std::string s = kGood;
  size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

TEST(SpecTest, ParsesEveryField) {
  auto s = ParseSpec(kGood, "");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->process.args.size(), 3u);
  EXPECT_EQ(s->process.env[1], "A=b=c");
  EXPECT_EQ(s->process.cwd, "/tmp");
  EXPECT_EQ(s->process.user.uid, 1000u);
  EXPECT_EQ(s->process.user.gid, 100u);
  EXPECT_EQ(s->process.user.additional_gids, (std::vector<gid_t>{10, 20}));
  ASSERT_EQ(s->process.rlimits.size(), 1u);
  EXPECT_EQ(s->process.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(s->process.rlimits[0].soft, 512u);
  EXPECT_TRUE(s->process.no_new_privileges);
  EXPECT_EQ(s->process.capabilities.bounding, std::vector<std::string>{"CAP_KILL"});
  EXPECT_EQ(CapabilityMask(s->process.capabilities.bounding), uint64_t{1} << 5);
  EXPECT_TRUE(s->root.readonly);
  EXPECT_EQ(s->hostname, "box");
  ASSERT_EQ(s->mounts.size(), 3u);
  EXPECT_TRUE(s->mounts[1].IsBind());
  EXPECT_FALSE(s->mounts[2].IsBind());
  EXPECT_EQ(s->hooks.prestart.size(), 1u);
  EXPECT_EQ(s->hooks.prestart[0].timeout_s, 5);
  EXPECT_EQ(s->hooks.poststop.size(), 1u);
  EXPECT_EQ(s->annotations.at("a"), "b");
  EXPECT_TRUE(s->HasNamespace("pid"));
  EXPECT_FALSE(s->HasNamespace("network"));
  EXPECT_EQ(s->cgroups_path, "/seedsc/x");
  EXPECT_EQ(s->resources.memory_limit, 104857600);
  EXPECT_EQ(s->resources.cpu_quota, 50000);
  EXPECT_EQ(s->resources.cpu_period, 100000u);
  EXPECT_EQ(s->resources.pids_limit, 64);
  EXPECT_EQ(s->masked_paths, std::vector<std::string>{"/proc/kcore"});
  EXPECT_EQ(s->readonly_paths, std::vector<std::string>{"/proc/sys"});
}

TEST(SpecTest, ErrorsNameTheField) {
  EXPECT_EQ(Error("{"), "config.json: (document): is not valid JSON");
  EXPECT_EQ(Error("[]"), "config.json: (document): must be a JSON object");
  EXPECT_EQ(Error(Good(R"("args": ["sh", "-c", "echo hi"])", R"("args": [])")),
            "config.json: process.args: must not be empty");
  EXPECT_EQ(Error(Good(R"("args": ["sh", "-c", "echo hi"])", R"("args": ["sh", 3])")),
            "config.json: process.args[1]: must be a string, not number");
  EXPECT_EQ(Error(Good(R"("cwd": "/tmp")", R"("cwd": "tmp")")),
            "config.json: process.cwd: \"tmp\" is not an absolute path");
  EXPECT_EQ(Error(Good(R"("A=b=c")", R"("NOEQUALS")")),
            "config.json: process.env[1]: \"NOEQUALS\" is not of the form KEY=VALUE");
  EXPECT_EQ(Error(Good(R"("uid": 1000)", R"("uid": -1)")),
            "config.json: process.user.uid: must not be negative");
  EXPECT_EQ(Error(Good(R"("uid": 1000)", R"("uid": "root")")),
            "config.json: process.user.uid: must be an integer, not string");
  EXPECT_EQ(Error(Good(R"([10, 20])", R"([10, "x"])")),
            "config.json: process.user.additionalGids[1]: must be a non-negative integer");
  EXPECT_EQ(Error(Good(R"("bounding": ["CAP_KILL"])", R"("bounding": ["CAP_FLY"])")),
            "config.json: process.capabilities.bounding[0]: unknown capability \"CAP_FLY\"");
  EXPECT_EQ(Error(Good("RLIMIT_NOFILE", "RLIMIT_BOGUS")),
            "config.json: process.rlimits[0].type: unknown rlimit \"RLIMIT_BOGUS\"");
  EXPECT_EQ(Error(Good(R"("soft": 512)", R"("soft": 4096)")),
            "config.json: process.rlimits[0].soft: must not exceed hard");
  EXPECT_EQ(Error(Good(R"("ociVersion": "1.0.2")", R"("ociVersion": "0.9")")),
            "config.json: ociVersion: unsupported version \"0.9\"");
  EXPECT_EQ(Error(Good(R"("root": {"path": "/", "readonly": true})", R"("root": {})")),
            "config.json: root.path: must be set");
  EXPECT_EQ(Error(Good(R"("readonly": true)", R"("readonly": "yes")")),
            "config.json: root.readonly: must be a boolean, not string");
  EXPECT_EQ(Error(Good(R"("destination": "/data")", R"("destination": "data")")),
            "config.json: mounts[1].destination: must be an absolute path");
  EXPECT_EQ(Error(Good(R"("source": "/tmp")", R"("source": "")")),
            "config.json: mounts[1].source: a bind mount needs a source");
  EXPECT_EQ(Error(Good(R"("path": "/bin/true", "args")", R"("path": "true", "args")")),
            "config.json: hooks.prestart[0].path: must be an absolute path");
  EXPECT_EQ(Error(Good(R"({"type": "pid"})", R"({"type": "pidd"})")),
            "config.json: linux.namespaces[0].type: unknown namespace type \"pidd\"");
  EXPECT_EQ(Error(Good(R"({"type": "uts"})", R"({"type": "pid"})")),
            "config.json: linux.namespaces[1].type: duplicate pid");
  EXPECT_EQ(Error(Good(R"({"type": "uts"}, )", "")),
            "config.json: hostname: needs a uts namespace in linux.namespaces");
  EXPECT_EQ(Error(Good(R"("limit": 104857600)", R"("limit": 10)")),
            "config.json: linux.resources.memory.limit: must be -1 or at least 4096 bytes");
  EXPECT_EQ(Error(Good(R"("period": 100000)", R"("period": 10)")),
            "config.json: linux.resources.cpu.period: must be between 1000 and 1000000 (µs)");
  EXPECT_EQ(Error(Good(R"("limit": 64)", R"("limit": "many")")),
            "config.json: linux.resources.pids.limit: must be an integer, not string");
  EXPECT_EQ(Error(Good(R"(["/proc/kcore"])", R"(["proc/kcore"])")),
            "config.json: linux.maskedPaths[0]: must be an absolute path");
  EXPECT_EQ(Error(Good(R"("annotations": {"a": "b"})", R"("annotations": {"a": 1})")),
            "config.json: annotations.a: must be a string");
}

TEST(SpecTest, RootIsResolvedAgainstTheBundle) {
  auto s = ParseSpec(Good(R"("path": "/", "readonly")", R"("path": "nonexistent", "readonly")"),
                     "/tmp");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "config.json: root.path: \"/tmp/nonexistent\" is not a directory");
}

// A relative root.path or bind source is the bundle's and must stay inside
// it; absolute paths are taken as written (runc follows both: a deliberate
// difference).
TEST(SpecTest, RelativePathsMustStayInTheBundle) {
  // Two levels below / (under /tmp, not the deeper $TEST_TMPDIR), so that
  // the ".."s below reach the host's /.
  const testutil::ScopedTempDir scratch = testutil::ScopedTempDir::Short("specbundle");
  const std::string& bundle = scratch.path();
  ASSERT_EQ(system(("mkdir -p " + bundle + "/rootfs/x " + bundle + "/data").c_str()), 0);
  auto escape_root = ParseSpec(
      Good(R"("path": "/", "readonly")", R"("path": "../../../../../../../../../", "readonly")"),
      bundle);
  ASSERT_FALSE(escape_root.ok());
  EXPECT_EQ(std::string(escape_root.status().message()),
            "config.json: root.path: \"../../../../../../../../../\" resolves outside the "
            "bundle (/)");
  auto inside = ParseSpec(Good(R"("path": "/", "readonly")", R"("path": "rootfs/x/..", "readonly")"),
                          bundle);
  EXPECT_TRUE(inside.ok()) << inside.status();
  auto absolute = ParseSpec(kGood, bundle);  // root.path "/" written explicitly
  EXPECT_TRUE(absolute.ok()) << absolute.status();

  auto escape_src = ParseSpec(Good(R"("source": "/tmp")", R"("source": "../../../../../../../../etc")"),
                              bundle);
  ASSERT_FALSE(escape_src.ok());
  EXPECT_EQ(std::string(escape_src.status().message()),
            "config.json: mounts[1].source: \"../../../../../../../../etc\" resolves outside the "
            "bundle (/etc)");
  EXPECT_FALSE(ParseSpec(Good(R"("source": "/tmp")", R"("source": "data/../../x")"), bundle).ok());
  auto rel_src = ParseSpec(Good(R"("source": "/tmp")", R"("source": "./data")"), bundle);
  ASSERT_TRUE(rel_src.ok()) << rel_src.status();
  EXPECT_EQ(rel_src->mounts[1].source, bundle + "/data");
}

TEST(SpecTest, UnsupportedMountTypesAreRefused) {
  EXPECT_EQ(Error(Good(R"("type": "tmpfs", "source": "tmpfs")",
                       R"("type": "ext4", "source": "/dev/vda")")),
            "config.json: mounts[2].type: \"ext4\" is not supported (supported: bind, tmpfs, "
            "proc, sysfs, devpts, mqueue, cgroup, cgroup2)");
  EXPECT_EQ(Error(Good(R"("type": "proc", "source": "proc")", R"("type": "nfs", "source": "h:/x")")),
            "config.json: mounts[0].type: \"nfs\" is not supported (supported: bind, tmpfs, "
            "proc, sysfs, devpts, mqueue, cgroup, cgroup2)");
  // Any type with "bind"/"rbind" in options is a bind mount.
  EXPECT_EQ(Error(Good(R"("type": "bind", "source": "/tmp")", R"("type": "none", "source": "/tmp")")),
            "OK");
}

TEST(SpecTest, DefaultSpecParses) {
  auto s = ParseSpec(DefaultSpecJson({}), "");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->process.args, std::vector<std::string>{"sh"});
  EXPECT_TRUE(s->process.terminal);
  EXPECT_EQ(s->root.path, "rootfs");
  auto t = ParseSpec(DefaultSpecJson({"echo", "x"}), "");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->process.args, (std::vector<std::string>{"echo", "x"}));
  EXPECT_FALSE(t->process.terminal);
}

}  // namespace
}  // namespace seedvisor::oci

namespace seedvisor::oci {
namespace {

TEST(SpecTest, AddDefaultHome) {
  const testutil::ScopedTempDir scratch("spec_test");
  const std::string& root = scratch.path();
  std::vector<std::string> env = {"A=1"};
  AddDefaultHome(root, 0, &env);
  EXPECT_EQ(env, (std::vector<std::string>{"A=1", "HOME=/"}));
  ASSERT_EQ(system(("mkdir -p " + root + "/etc && printf 'root:x:0:0:root:/root:/bin/sh\\n"
                    "u:x:1000:1000::/home/u:/bin/sh\\n' > " + root + "/etc/passwd").c_str()), 0);
  env = {};
  AddDefaultHome(root, 1000, &env);
  EXPECT_EQ(env, std::vector<std::string>{"HOME=/home/u"});
  env = {"HOME=/x"};
  AddDefaultHome(root, 0, &env);
  EXPECT_EQ(env, std::vector<std::string>{"HOME=/x"});
}

// What containerd 1.6 sends in UpdateTaskRequest.resources (ctr task update
// --memory-limit --cpu-quota ...): an OCI LinuxResources as JSON, with fields
// seedsc does not apply (devices) alongside.
TEST(SpecTest, ParseResourcesJson) {
  auto r = ParseResourcesJson(
      R"({"devices":[{"allow":false,"access":"rwm"}],"memory":{"limit":67108864,"swap":134217728,)"
      R"("reservation":33554432},"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},)"
      R"("pids":{"limit":64}})",
      "resources");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->memory_limit, 67108864);
  EXPECT_EQ(r->memory_swap, 134217728);
  EXPECT_EQ(r->memory_reservation, 33554432);
  EXPECT_EQ(r->cpu_shares, 512u);
  EXPECT_EQ(r->cpu_quota, 50000);
  EXPECT_EQ(r->cpu_period, 100000u);
  EXPECT_EQ(r->cpuset_cpus, "0");
  EXPECT_EQ(r->pids_limit, 64);

  auto only = ParseResourcesJson(R"({"memory":{"limit":-1}})", "resources");
  ASSERT_TRUE(only.ok()) << only.status();
  EXPECT_EQ(only->memory_limit, -1);
  EXPECT_FALSE(only->cpu_shares.has_value());
  EXPECT_FALSE(only->pids_limit.has_value());
}

TEST(SpecTest, ParseResourcesJsonErrorsNameTheField) {
  auto bad = ParseResourcesJson(R"({"memory":{"limit":"64m"}})", "resources");
  EXPECT_EQ(bad.status().message(), "resources: memory.limit: must be an integer, not string");
  bad = ParseResourcesJson(R"({"cpu":{"period":10}})", "resources");
  EXPECT_EQ(bad.status().message(), "resources: cpu.period: must be between 1000 and 1000000 (µs)");
  bad = ParseResourcesJson(R"({"cpu":{"shares":-2}})", "resources");
  EXPECT_EQ(bad.status().message(), "resources: cpu.shares: must not be negative");
  bad = ParseResourcesJson(R"({"memory":{"limit":100}})", "resources");
  EXPECT_EQ(bad.status().message(), "resources: memory.limit: must be -1 or at least 4096 bytes");
  bad = ParseResourcesJson("[1]", "resources");
  EXPECT_EQ(bad.status().message(), "resources: (document): is not a JSON object");
}

}  // namespace
TEST(CapabilityNames, NumbersFollowLinux) {
  // Every name config.json may use, in number order (linux/capability.h).
  const char* kAll[] = {
      "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
      "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
      "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
      "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
      "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
      "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
      "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
      "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
      "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"};
  for (int i = 0; i < static_cast<int>(std::size(kAll)); ++i) {
    EXPECT_EQ(CapabilityNumber(kAll[i]), i) << kAll[i];
  }
  EXPECT_EQ(CapabilityNumber("CAP_CHOWN"), 0);
  EXPECT_EQ(CapabilityNumber("CAP_NET_BIND_SERVICE"), 10);
  EXPECT_EQ(CapabilityNumber("CAP_SYS_ADMIN"), 21);
  EXPECT_EQ(CapabilityNumber("CAP_AUDIT_WRITE"), 29);
  EXPECT_EQ(CapabilityNumber("CAP_CHECKPOINT_RESTORE"), 40);
  EXPECT_EQ(CapabilityNumber("CAP_FLY"), -1);
  // Only the exact macro name: libcap alone would take all of these.
  EXPECT_EQ(CapabilityNumber("cap_kill"), -1);
  EXPECT_EQ(CapabilityNumber("Cap_Kill"), -1);
  EXPECT_EQ(CapabilityNumber("CAP_KILL "), -1);
  EXPECT_EQ(CapabilityNumber("5"), -1);
  EXPECT_EQ(CapabilityNumber("CAP_"), -1);
  EXPECT_EQ(CapabilityNumber(""), -1);
  EXPECT_EQ(CapabilityMask({"CAP_KILL", "CAP_FLY", "CAP_CHOWN"}), 0x21u);
}

}  // namespace seedvisor::oci
