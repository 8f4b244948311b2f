"""Wrappers for libraries installed from Debian's -dev packages.

Each repository exposes the upstream project's canonical labels
(@com_google_absl//absl/base:core_headers, @com_google_googletest//:gtest, ...)
over the headers in /usr/include and the libraries on the default linker path,
so a consumer who builds these projects from source can declare them first and
keep their own. Nothing is downloaded or vendored.
"""

def _installed_version(ctx):
    """The integer that version_macro is #defined to in version_header, or -1."""
    for line in ctx.read(ctx.attr.version_header).splitlines():
        words = [w for w in line.replace("\t", " ").split(" ") if w]
        if len(words) == 3 and words[0] == "#define" and words[1] == ctx.attr.version_macro:
            return int(words[2]) if words[2].isdigit() else -1
    return -1

def _system_library_impl(ctx):
    install = "Install the Debian package(s) %s (bazel/setup.sh in @stackalloc does it)." % (
        ", ".join(ctx.attr.debian_packages)
    )
    missing = [p for p in ctx.attr.required_paths if not ctx.path(p).exists]
    if missing:
        fail("@%s needs %s, which is missing. %s" % (ctx.name, ", ".join(missing), install))
    version = 0
    if ctx.attr.version_header:
        version = _installed_version(ctx)
        if version < ctx.attr.min_version:
            fail("@%s needs %s >= %d in %s, which says %d. %s" % (
                ctx.name,
                ctx.attr.version_macro,
                ctx.attr.min_version,
                ctx.attr.version_header,
                version,
                install,
            ))
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)

    # %{version} in a BUILD file becomes the installed version: as a define,
    # it puts the version on every dependent compile line, so that no build
    # cache serves objects compiled against another version's headers
    # (Bazel does not hash system headers).
    for path, content in ctx.attr.build_files.items():
        ctx.file(path, content.replace("%{version}", str(version)))

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
        "version_header": attr.string(
            doc = "A header that #defines version_macro to an integer (optional).",
        ),
        "version_macro": attr.string(doc = "The macro that version_header defines."),
        "min_version": attr.int(doc = "The least value version_macro may have."),
    },
    local = True,
)

def _lib(name, linkopts = [], deps = [], defines = [], visibility = "//visibility:public"):
    """BUILD text for a cc_library over a system library."""
    return "\n".join([
        "cc_library(",
        '    name = "%s",' % name,
        "    linkopts = %s," % repr(linkopts),
        "    deps = %s," % repr(deps),
        "    defines = %s," % repr(defines),
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
    # The async-signal-safe symbolizer (absl::Symbolize), for the overflow
    # report's traceback.
    "absl/debugging/BUILD": _lib(
        "symbolize",
        linkopts = [
            "-labsl_symbolize",
            "-labsl_debugging_internal",
            "-labsl_demangle_internal",
            "-labsl_malloc_internal",
        ],
        deps = ["//absl/base"],
    ),
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

# Boost 1.81: Boost.Context, Boost.Fiber over it (libboost-fiber1.81-dev),
# and the header-only Asio (whose spawn runs on Boost.Context) and Beast
# (HTTP over Asio), from libboost1.81-dev.
BOOST_BUILD_FILES = {
    "BUILD": "\n".join([
        _lib(
            "context",
            linkopts = ["-lboost_context"],
            defines = ["STACKALLOC_SYSTEM_BOOST_VERSION=%{version}"],
        ),
        _lib("fiber", linkopts = ["-lboost_fiber", "-pthread"], deps = [":context"]),
        _lib("asio", linkopts = ["-pthread"], deps = [":context"]),
        _lib("beast", deps = [":asio"]),
    ]),
}

# Malloc replacements, for //testing/perf:peers_benchmark. Each defines malloc
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
