"""Wrappers for libraries installed from Debian's -dev packages.

Each repository exposes the upstream project's canonical labels
(@com_google_absl//absl/base:core_headers, @com_google_googletest//:gtest, ...)
over the headers in /usr/include and the libraries on the default linker path,
so a consumer who builds these projects from source can declare them first and
keep their own. Nothing is downloaded or vendored.
"""

def _system_library_impl(ctx):
    missing = [p for p in ctx.attr.required_paths if not ctx.path(p).exists]
    if missing:
        fail("@%s needs %s, which is missing. Install the Debian package(s) %s " %
             (ctx.name, ", ".join(missing), ", ".join(ctx.attr.debian_packages)) +
             "(bazel/setup.sh in @stackalloc does it).")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    for path, content in ctx.attr.build_files.items():
        ctx.file(path, content)

system_library = repository_rule(
    implementation = _system_library_impl,
    attrs = {
        "build_files": attr.string_dict(
            mandatory = True,
            doc = "Package path of each BUILD file -> its content.",
        ),
        "debian_packages": attr.string_list(
            doc = "Packages that provide required_paths, for the error message.",
        ),
        "required_paths": attr.string_list(
            doc = "Absolute paths that must exist (headers, typically).",
        ),
    },
    local = True,
)

def _lib(name, linkopts = [], deps = [], visibility = "//visibility:public"):
    """BUILD text for a cc_library over a system library."""
    return "\n".join([
        "cc_library(",
        '    name = "%s",' % name,
        "    linkopts = %s," % repr(linkopts),
        "    deps = %s," % repr(deps),
        '    visibility = ["%s"],' % visibility,
        ")",
        "",
    ])

_ABSL_BASE_LIBS = [
    "-labsl_base",
    "-labsl_raw_logging_internal",
    "-labsl_log_severity",
    "-labsl_spinlock_wait",
    "-labsl_throw_delegate",
]

ABSL_BUILD_FILES = {
    "BUILD": "",
    "absl/base/BUILD": "\n".join([
        _lib("core_headers"),
        _lib("config"),
        _lib("base", linkopts = _ABSL_BASE_LIBS + ["-pthread"], deps = [":core_headers"]),
    ]),
    "absl/time/BUILD": _lib(
        "time",
        linkopts = ["-labsl_time", "-labsl_time_zone", "-labsl_int128"],
        deps = ["//absl/base"],
    ),
    "absl/synchronization/BUILD": _lib(
        "synchronization",
        linkopts = [
            "-labsl_synchronization",
            "-labsl_graphcycles_internal",
            "-labsl_malloc_internal",
            "-labsl_stacktrace",
            "-labsl_symbolize",
            "-labsl_debugging_internal",
            "-labsl_demangle_internal",
            "-labsl_strings",
            "-labsl_strings_internal",
        ],
        deps = ["//absl/base", "//absl/time"],
    ),
}

GOOGLETEST_BUILD_FILES = {
    "BUILD": "\n".join([
        _lib("gtest", linkopts = ["-lgtest", "-pthread"]),
        _lib("gtest_main", linkopts = ["-lgtest_main", "-lgtest", "-pthread"]),
    ]),
}

BENCHMARK_BUILD_FILES = {
    "BUILD": "\n".join([
        _lib("benchmark", linkopts = ["-lbenchmark", "-pthread"]),
        _lib(
            "benchmark_main",
            linkopts = ["-lbenchmark_main", "-lbenchmark", "-pthread"],
        ),
    ]),
}

# Boost.Context, and Boost.Fiber over it (libboost-fiber-dev; only what uses
# @boost//:fiber needs it installed).
BOOST_BUILD_FILES = {
    "BUILD": "\n".join([
        _lib("context", linkopts = ["-lboost_context"]),
        _lib("fiber", linkopts = ["-lboost_fiber", "-pthread"], deps = [":context"]),
    ]),
}

# Malloc replacements, for //testing:peers_benchmark. Each defines malloc
# itself: link at most one into a binary.

JEMALLOC_BUILD_FILES = {
    "BUILD": _lib("jemalloc", linkopts = ["-ljemalloc", "-pthread"]),
}

# gperftools' tcmalloc (not google/tcmalloc, which is @com_google_tcmalloc).
GPERFTOOLS_BUILD_FILES = {
    "BUILD": "\n".join([
        _lib("tcmalloc_minimal", linkopts = ["-ltcmalloc_minimal", "-pthread"]),
        _lib("tcmalloc", linkopts = ["-ltcmalloc", "-pthread"]),
    ]),
}

MIMALLOC_BUILD_FILES = {
    "BUILD": _lib("mimalloc", linkopts = ["-lmimalloc", "-pthread"]),
}
