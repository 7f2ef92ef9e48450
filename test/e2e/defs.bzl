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
