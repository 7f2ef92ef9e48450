"""cc_proto: C++ protobuf library built with Debian's /usr/bin/protoc.

    load("//third_party:proto.bzl", "cc_proto")

    cc_proto(
        name = "shim_proto",
        srcs = ["shim.proto"],
        deps = ["//other/pkg:other_proto"],  # other cc_proto targets only
    )

Code then includes "<package>/shim.pb.h" and depends on ":shim_proto".
Imports name files by workspace path ("other/pkg/other.proto"); Google's
well-known types ("google/protobuf/timestamp.proto") come from /usr/include.
"""

def _proto_srcs_label(dep):
    """The filegroup of .proto files that cc_proto(dep) defines."""
    if ":" not in dep:
        dep = dep + ":" + dep.split("/")[-1]
    return dep + "_proto_srcs"

def cc_proto(name, srcs, deps = [], visibility = None, **kwargs):
    """Runs protoc --cpp_out over srcs and wraps the result in a cc_library.

    Args:
      name: name of the cc_library.
      srcs: .proto files in this package.
      deps: other cc_proto targets whose .proto files srcs import.
      visibility: of the cc_library and of the .proto filegroup.
      **kwargs: passed to the cc_library (e.g. testonly, tags).
    """
    for s in srcs:
        if not s.endswith(".proto"):
            fail("cc_proto srcs must be .proto files: " + s)
    bases = [s[:-len(".proto")] for s in srcs]
    hdrs = [b + ".pb.h" for b in bases]
    ccs = [b + ".pb.cc" for b in bases]
    dep_srcs = [_proto_srcs_label(d) for d in deps]

    # This package's .proto files and those of deps, for protoc's imports.
    native.filegroup(
        name = name + "_proto_srcs",
        srcs = srcs + dep_srcs,
        visibility = visibility,
    )

    native.genrule(
        name = name + "_protoc",
        srcs = srcs + dep_srcs,
        outs = hdrs + ccs,
        tools = ["@system//:protoc"],
        cmd = ("$(location @system//:protoc) --proto_path=. " +
               "--proto_path=/usr/include --cpp_out=$(GENDIR) " +
               " ".join(["$(location %s)" % s for s in srcs])),
        message = "protoc " + name,
    )

    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        deps = deps + ["@system//:protobuf"],
        visibility = visibility,
        **kwargs
    )
