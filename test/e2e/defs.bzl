"""Switch for the tests that run the built seedsc binary.

SEEDSC_READY was False until //runsc:seedsc built (True since 38c8620).
While it is False, the sh_tests that need //runsc:seedsc are not created, so
`bazel test //...` stays green without a seedsc binary.
"""

SEEDSC_READY = True

# Tests that run seedsc need ptrace, namespaces and the host's real root:
# never sandboxed, never cached remotely.
SEEDSC_TEST_TAGS = ["local", "no-sandbox"]

def seedsc_data():
    """The data deps of a test that runs seedsc (empty while not ready)."""
    return ["//runsc:seedsc"] if SEEDSC_READY else []

def seedsc_args():
    """Test args that name the seedsc binary (empty while not ready)."""
    return ["--seedsc=$(rootpath //runsc:seedsc)"] if SEEDSC_READY else []

def e2e_tests(
        name,
        src,
        references = ["native", "runsc"],
        data = [],
        args = [],
        kvm = False,
        kvm_size = "medium",
        prog = None,
        prog_flag = "--prog"):
    """A shell e2e test (testlib.sh) against the built seedsc and its references.

    Makes <name>_test (seedsc's default platform, systrap), <name>_ptrace_test,
    and <name>_<ref>_reference_test for each of `references` (see testlib.sh:
    a case must pass against them before it says anything about seedsc). The
    reference runs get --reference=<ref>, which a script may use for its
    KNOWN_FAILING entries. `data`: files the script needs beside testlib;
    `args`: more arguments for every variant (e.g. --prog=$(rootpath ...)).
    `kvm`: also <name>_kvm_test on --platform=kvm, which skips with the
    platform's one-line reason where /dev/kvm is unusable; for scripts
    that finish in a minute or two there (every guest syscall is a VM exit,
    ≈ 0.1-0.25 ms on these machines: platform/kvm/README.md).
    `kvm_size`: the kvm variant's size, for a script whose syscalls take
    minutes there (sqlite_kvm: ≈ 140 s, `large`).
    `prog`: a program of the test's own (a label) that every variant gets as
    `prog_flag`=its path.
    """
    if prog:
        args = args + ["%s=$(rootpath %s)" % (prog_flag, prog)]
        data = data + [prog]
    if SEEDSC_READY:
        native.sh_test(
            name = name + "_test",
            size = "medium",
            srcs = [src],
            args = seedsc_args() + args,
            data = [":testlib"] + data + seedsc_data(),
            tags = SEEDSC_TEST_TAGS,
        )
        native.sh_test(
            name = name + "_ptrace_test",
            size = "medium",
            srcs = [src],
            args = ["--seedsc=$(rootpath :seedsc_ptrace.sh)"] + args,
            data = [":seedsc_ptrace.sh", ":testlib"] + data + seedsc_data(),
            tags = SEEDSC_TEST_TAGS,
        )
    if SEEDSC_READY and kvm:
        native.sh_test(
            name = name + "_kvm_test",
            size = kvm_size,
            srcs = [src],
            args = ["--seedsc=$(rootpath :seedsc_kvm.sh)", "--platform=kvm"] + args,
            data = [":seedsc_kvm.sh", ":testlib", "//test:kvm_skip.sh"] + data + seedsc_data(),
            tags = SEEDSC_TEST_TAGS,
        )
    for ref in references:
        native.sh_test(
            name = "%s_%s_reference_test" % (name, ref),
            size = "medium",
            srcs = [src],
            args = [
                "--seedsc=$(rootpath :%s_as_seedsc.sh)" % ref,
                "--reference=" + ref,
            ] + args,
            data = [":%s_as_seedsc.sh" % ref, ":testlib"] + data,
            tags = SEEDSC_TEST_TAGS,
        )
