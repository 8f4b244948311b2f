"""Compiler flags and rule macros for stackalloc's own targets.

Every target of ours goes through these macros, so the warnings (errors for
our code only; external code is silenced by .bazelrc), the file a target is
built from (named after it), the test defaults and what makes a benchmark
are said once.
"""

STACKALLOC_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wnon-virtual-dtor",
    "-Wcast-align",
    "-Wmissing-declarations",
    "-Wno-sign-compare",
]

STACKALLOC_TEST_COPTS = STACKALLOC_COPTS

def stackalloc_cc_library(name, srcs = None, hdrs = None, copts = [], test_deps = None, **kwargs):
    """A cc_library with our warnings, and its unit test.

    Of `name`.h, and `name`.cc if there is one, unless srcs or hdrs say
    otherwise (one library per header, named after it). With test_deps (a
    list, maybe empty), also `name`_test from `name`_test.cc, right after
    it, depending on the library and test_deps.
    """
    native.cc_library(
        name = name,
        srcs = srcs if srcs != None else native.glob([name + ".cc"], allow_empty = True),
        hdrs = hdrs if hdrs != None else [name + ".h"],
        copts = STACKALLOC_COPTS + copts,
        **kwargs
    )
    if test_deps != None:
        stackalloc_cc_test(
            name = name + "_test",
            deps = [":" + name] + test_deps,
        )

def stackalloc_cc_test(name, srcs = None, deps = [], copts = [], gtest_main = True, **kwargs):
    """A cc_test of `name`.cc (unless srcs says otherwise), with GoogleTest's main."""
    native.cc_test(
        name = name,
        srcs = srcs if srcs != None else [name + ".cc"],
        copts = STACKALLOC_TEST_COPTS + copts,
        deps = deps + (["@com_google_googletest//:gtest_main"] if gtest_main else []),
        **kwargs
    )

def stackalloc_cc_benchmark(name, srcs = None, tags = [], copts = [], **kwargs):
    """A benchmark binary: testonly, tagged "benchmark", run with `bazel run -c opt`."""
    native.cc_binary(
        name = name,
        srcs = srcs if srcs != None else [name + ".cc"],
        copts = STACKALLOC_COPTS + copts,
        testonly = True,
        tags = tags + ["benchmark"],
        **kwargs
    )

def stackalloc_sh_benchmark(name, srcs = None, tags = [], **kwargs):
    """A benchmark script (`name`.sh unless srcs says otherwise): testonly and tagged like the binaries."""
    native.sh_binary(
        name = name,
        srcs = srcs if srcs != None else [name + ".sh"],
        testonly = True,
        tags = tags + ["benchmark"],
        **kwargs
    )

# For code that includes Boost.Asio and runs its coroutines on several
# threads. -Wno-tsan: Asio runs handlers inside std_fenced_block
# (atomic_thread_fence), which GCC warns ThreadSanitizer does not model;
# Asio hands work between threads through its scheduler's mutex, which TSan
# sees. No __tsan_func_entry/exit: Boost's fcontext switches stacks without
# telling TSan, so a coroutine that entered functions on one thread and
# returns from them on another ran TSan's per-thread shadow call stack out of
# its bounds (a crash in TSan's stack depot); memory accesses and
# synchronization are still checked, and reports lose the callers of the
# racing frame (docs/boost.md, "Sanitizers"). Both flags are GCC's: clang
# (--config=clang) builds these without TSan and takes neither.
ASIO_COPTS = select({
    "//bazel:clang": [],
    "//conditions:default": [
        "-Wno-tsan",
        "--param=tsan-instrument-func-entry-exit=0",
    ],
})
