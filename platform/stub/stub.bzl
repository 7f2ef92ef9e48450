"""stub_image(): a stub executable, linked and embedded in the sentry."""

def stub_image(name, src, namespace, visibility = None, deps = []):
    """Links `src` (a stub_amd64.S that includes stub_common_amd64.inc) as a
    position-dependent, libc-free executable at kStubBase (stub_layout.h), and
    makes the cc_library `name` holding its bytes: `stub_image.h` declares
    kStubImage and kStubImageSize in `namespace`. `deps` give `src` more
    textual headers to include."""
    native.cc_binary(
        name = name + "_bin",
        srcs = [src],
        deps = ["//platform/stub:stub_asm"] + deps,
        features = ["-pic"],
        linkopts = [
            "-nostdlib",
            "-static",
            "-no-pie",
            "-Wl,-Ttext-segment=0x7fffe0000000",
            "-Wl,--build-id=none",
        ],
    )
    native.genrule(
        name = name + "_gen",
        srcs = [":" + name + "_bin"],
        outs = ["stub_image.h", "stub_image.cc"],
        cmd = "$(location //platform/stub:embed_stub.sh) %s $(location :%s_bin) $(location stub_image.h) $(location stub_image.cc)" % (namespace, name),
        tools = ["//platform/stub:embed_stub.sh"],
    )
    native.cc_library(
        name = name,
        srcs = ["stub_image.cc"],
        hdrs = ["stub_image.h"],
        visibility = visibility,
    )
