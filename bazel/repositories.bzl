"""stackalloc_dependencies(): every external repository stackalloc needs.

Call it from your WORKSPACE after declaring any of these repositories you
build yourself: each is declared only if the workspace does not have it yet.
"""

load("@bazel_tools//tools/build_defs/repo:utils.bzl", "maybe")
load(
    "//bazel:offline_repositories.bzl",
    "offline_remote_coverage_tools",
    "offline_rules_cc",
    "offline_rules_java",
)
load(
    "//bazel:system_libraries.bzl",
    "ABSL_BUILD_FILES",
    "BENCHMARK_BUILD_FILES",
    "BOOST_BUILD_FILES",
    "GOOGLETEST_BUILD_FILES",
    "GPERFTOOLS_BUILD_FILES",
    "JEMALLOC_BUILD_FILES",
    "MIMALLOC_BUILD_FILES",
    "system_library",
)

def stackalloc_dependencies():
    """Declares stackalloc's external repositories unless already present."""

    # Bazel 4.2.3 would download these when a cc_test is analysed.
    maybe(offline_rules_cc, name = "rules_cc")
    maybe(offline_rules_java, name = "rules_java")
    maybe(offline_remote_coverage_tools, name = "remote_coverage_tools")

    maybe(
        system_library,
        name = "com_google_absl",
        build_files = ABSL_BUILD_FILES,
        debian_packages = ["libabsl-dev"],
        required_paths = ["/usr/include/absl/base/config.h"],
    )
    maybe(
        system_library,
        name = "com_google_googletest",
        build_files = GOOGLETEST_BUILD_FILES,
        debian_packages = ["libgtest-dev"],
        required_paths = ["/usr/include/gtest/gtest.h"],
    )
    maybe(
        system_library,
        name = "com_github_google_benchmark",
        build_files = BENCHMARK_BUILD_FILES,
        debian_packages = ["libbenchmark-dev"],
        required_paths = ["/usr/include/benchmark/benchmark.h"],
    )
    maybe(
        system_library,
        name = "boost",
        build_files = BOOST_BUILD_FILES,
        debian_packages = ["libboost-context-dev"],
        required_paths = ["/usr/include/boost/context/fiber.hpp"],
    )

    # Malloc replacements, only for benchmarks (//testing:peers_benchmark).
    maybe(
        system_library,
        name = "jemalloc",
        build_files = JEMALLOC_BUILD_FILES,
        debian_packages = ["libjemalloc-dev"],
        required_paths = ["/usr/include/jemalloc/jemalloc.h"],
    )
    maybe(
        system_library,
        name = "gperftools",
        build_files = GPERFTOOLS_BUILD_FILES,
        debian_packages = ["libgoogle-perftools-dev"],
        required_paths = ["/usr/include/gperftools/tcmalloc.h"],
    )
    maybe(
        system_library,
        name = "mimalloc",
        build_files = MIMALLOC_BUILD_FILES,
        debian_packages = ["libmimalloc-dev"],
        required_paths = ["/usr/include/mimalloc.h"],
    )
