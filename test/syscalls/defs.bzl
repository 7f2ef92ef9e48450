"""syscall_test: one gtest binary, run natively and inside the sandbox.

    load("//test/syscalls:defs.bzl", "syscall_test")

    syscall_test(
        name = "file",
        srcs = ["file_test.cc"],
        deps = [":test_util"],
    )

makes

    file_bin        fully static cc_binary (gtest_main linked in)
    file_native     sh_test: runs file_bin directly on the host
    file_ptrace     sh_test: runs `seedsc --platform=ptrace do file_bin`
                    (one such target per entry of SANDBOX_PLATFORMS;
                    file_systrap with --systrap-patch=false: every
                    syscall traps, the path unpatchable sites, CPUs and
                    users of the flag take)
    file_systrap_patch
                    sh_test: systrap with syscall-site patching, seedsc's
                    default (platform/systrap/PATCHING.md)
    file            test_suite of all of the above

Every variant runs through run_test.sh, so a failure looks the same
everywhere. Native must pass: that is what proves the test itself is right.
"""

# Sandbox platforms every syscall test also runs on; each one yields a
# `<name>_<platform>` target.
SANDBOX_PLATFORMS = ["ptrace", "systrap"]

# kvm runs the suites that set `kvm = True`: every suite but those
# platform/kvm/README.md ("Conformance") names with the reason (a limit of
# the platform, or too slow for CI at a VM exit of ≈ 100 µs per guest
# syscall here). Where /dev/kvm is unusable a kvm variant skips with the
# platform's one-line reason (run_test.sh).

# The sandbox binary the `_<platform>` variants run the test under.
SEEDSC = "//runsc:seedsc"

_RUNNER = "//test/syscalls:run_test.sh"

def syscall_test(
        name,
        srcs,
        deps = [],
        tags = [],
        size = "small",
        args = [],
        kvm = False,
        kvm_args = [],
        kvm_size = None,
        kvm_2vcpus = False,
        netstack = False,
        net_raw = False,
        network_none = True,
        as_init = False,
        host_tmpfs = 0,
        host_volume = False,
        **kwargs):
    """Defines <name>_bin, <name>_native, <name>_<platform> and <name>.

    Args:
      name: base name of the targets.
      srcs: gtest sources (no main(); @system//:gtest_main_static provides it).
      deps: extra cc deps.
      tags: tags added to every test variant.
      size: Bazel test size of every variant.
      args: extra arguments passed to the test binary (e.g. --gtest_filter).
      kvm: also make <name>_kvm (see above); <name>_kvm_netstack instead
        for a suite that runs only on the sandbox's own stack
        (network_none = False).
      kvm_args: extra arguments of the kvm variant only: a negative
        --gtest_filter for the cases a limit of the kvm platform fails, each
        named with its reason in platform/kvm/README.md ("Conformance").
      kvm_size: the kvm variant's size, where its VM exits make it slower
        than `size` allows (default: `size`).
      kvm_2vcpus: also make <name>_kvm_2vcpus, the kvm variant on a VM of
        two vCPUs (SEEDSC_KVM_MAX_VCPUS=2), where more threads than that
        share them (platform/kvm/README.md, "vCPUs").
      netstack: also run in the sandbox with --network=sandbox (the sentry's
        own TCP/IP stack) as <name>_<platform>_netstack.
      net_raw: the sandboxed variants run with seedsc --net-raw (raw
        sockets for a guest with CAP_NET_RAW, as runsc's flag).
      network_none: make <name>_<platform> (the default --network=none);
        False for what only the sandbox's own stack serves so far.
      as_init: the test must run as pid 1 of its pid namespace (it is in the
        sandbox): <name>_native runs it under `unshare --pid --fork`.
      host_tmpfs: every variant runs in a mount namespace of its own with
        this many host tmpfs mounts under $TEST_TMPDIR/host_tmpfs
        (run_test.sh --host-tmpfs): objects of other host file systems in
        the sandbox's lower layer.
      host_volume: every variant gets the directory $TEST_HOST_VOLUME
        (run_test.sh --host-volume), in the sandbox a writable bind of a
        host directory (seedsc do --volume), as a container's volume.
      **kwargs: passed on to every sh_test (e.g. timeout, flaky, shard_count).
    """
    binary = name + "_bin"
    native.cc_binary(
        name = binary,
        srcs = srcs,
        deps = ["@system//:gtest_main_static"] + deps,
        # Fully static: the sandbox then needs no dynamic loader or host
        # libraries to start the test. cc_binary already links statically.
        linkopts = ["-static"],
        linkstatic = True,
        testonly = True,
        tags = tags,
    )

    host = (["--host-tmpfs=%d" % host_tmpfs] if host_tmpfs else []) + \
           (["--host-volume"] if host_volume else [])

    variants = [name + "_native"]
    native.sh_test(
        name = name + "_native",
        srcs = [_RUNNER],
        args = ["--binary=$(rootpath :%s)" % binary] + (["--as-init"] if as_init else []) + host +
               ["--"] + args,
        data = [":" + binary],
        size = size,
        tags = tags + (["local", "no-sandbox"] if as_init or host_tmpfs else []),
        **kwargs
    )

    for platform in (SANDBOX_PLATFORMS if network_none else []):
        variants.append(name + "_" + platform)
        native.sh_test(
            name = name + "_" + platform,
            srcs = [_RUNNER],
            args = [
                "--binary=$(rootpath :%s)" % binary,
                "--seedsc=$(rootpath %s)" % SEEDSC,
                "--platform=" + platform,
            ] + (["--systrap-patch=false"] if platform == "systrap" else []) +
            (["--net-raw"] if net_raw else []) + host + [
                "--",
            ] + args,
            data = [":" + binary, SEEDSC],
            size = size,
            # ptrace/namespaces/seccomp need the real host: no Bazel sandbox,
            # no remote execution.
            tags = tags + ["local", "no-sandbox"],
            **kwargs
        )

    if kvm:
        kvm_name = name + ("_kvm" if network_none else "_kvm_netstack")
        kvm_variants = [(kvm_name, {})]
        if kvm_2vcpus:
            kvm_variants.append((kvm_name + "_2vcpus", {"SEEDSC_KVM_MAX_VCPUS": "2"}))
        for variant, env in kvm_variants:
            variants.append(variant)
            native.sh_test(
                name = variant,
                srcs = [_RUNNER],
                args = [
                    "--binary=$(rootpath :%s)" % binary,
                    "--seedsc=$(rootpath %s)" % SEEDSC,
                    "--platform=kvm",
                ] + ([] if network_none else ["--network=sandbox"]) +
                (["--net-raw"] if net_raw else []) + host + ["--"] + args + kvm_args,
                data = [":" + binary, SEEDSC, "//test:kvm_skip.sh"],
                env = env,
                size = kvm_size or size,
                tags = tags + ["local", "no-sandbox"],
                **kwargs
            )

    # systrap with its hot syscall sites patched into jumps to the stub's
    # fast entry (seedsc's default now; the flag is explicit here),
    # on the default network like the plain variants.
    if network_none:
        variants.append(name + "_systrap_patch")
        native.sh_test(
            name = name + "_systrap_patch",
            srcs = [_RUNNER],
            args = [
                "--binary=$(rootpath :%s)" % binary,
                "--seedsc=$(rootpath %s)" % SEEDSC,
                "--platform=systrap",
                "--systrap-patch",
            ] + host + [
                "--",
            ] + args,
            data = [":" + binary, SEEDSC],
            size = size,
            tags = tags + ["local", "no-sandbox"],
            **kwargs
        )

    if netstack:
        for platform in SANDBOX_PLATFORMS:
            variants.append(name + "_" + platform + "_netstack")
            native.sh_test(
                name = name + "_" + platform + "_netstack",
                srcs = [_RUNNER],
                args = [
                    "--binary=$(rootpath :%s)" % binary,
                    "--seedsc=$(rootpath %s)" % SEEDSC,
                    "--platform=" + platform,
                    "--network=sandbox",
                ] + (["--net-raw"] if net_raw else []) + host + [
                    "--",
                ] + args,
                data = [":" + binary, SEEDSC],
                size = size,
                tags = tags + ["local", "no-sandbox"],
                **kwargs
            )

    native.test_suite(
        name = name,
        tests = [":" + v for v in variants],
        # A test_suite's tags filter its tests: pass on only "manual", so
        # that `bazel test //...` skips a manual suite as it skips its tests.
        tags = ["manual"] if "manual" in tags else [],
    )
