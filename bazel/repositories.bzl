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

# Boost 1.81 or later: Asio's spawn takes a stack allocator since 1.80.
_BOOST_PACKAGES = ["libboost1.81-dev", "libboost-context1.81-dev", "libboost-fiber1.81-dev"]
_MIN_VERSIONS = {"boost": ("/usr/include/boost/version.hpp", "BOOST_VERSION", 108100)}

# Debian-installed libraries, wrapped under their canonical repository names:
# (name, BUILD files, Debian packages, a header that proves it is installed).
_SYSTEM_LIBRARIES = [
    ("com_google_absl", ABSL_BUILD_FILES, ["libabsl-dev"], "/usr/include/absl/base/config.h"),
    ("com_google_googletest", GOOGLETEST_BUILD_FILES, ["libgtest-dev"], "/usr/include/gtest/gtest.h"),
    ("com_github_google_benchmark", BENCHMARK_BUILD_FILES, ["libbenchmark-dev"], "/usr/include/benchmark/benchmark.h"),
    ("boost", BOOST_BUILD_FILES, _BOOST_PACKAGES, "/usr/include/boost/context/fiber.hpp"),
    # Malloc replacements, only for benchmarks (//testing/perf:peers_benchmark).
    ("jemalloc", JEMALLOC_BUILD_FILES, ["libjemalloc-dev"], "/usr/include/jemalloc/jemalloc.h"),
    ("gperftools", GPERFTOOLS_BUILD_FILES, ["libgoogle-perftools-dev"], "/usr/include/gperftools/tcmalloc.h"),
    ("mimalloc", MIMALLOC_BUILD_FILES, ["libmimalloc-dev"], "/usr/include/mimalloc.h"),
]

def stackalloc_dependencies():
    """Declares stackalloc's external repositories unless already present."""

    # Bazel 4.2.3 would download these when a cc_test is analysed.
    maybe(offline_rules_cc, name = "rules_cc")
    maybe(offline_rules_java, name = "rules_java")
    maybe(offline_remote_coverage_tools, name = "remote_coverage_tools")

    for name, build_files, packages, header in _SYSTEM_LIBRARIES:
        version_header, version_macro, min_version = _MIN_VERSIONS.get(name, ("", "", 0))
        maybe(
            system_library,
            name = name,
            build_files = build_files,
            debian_packages = packages,
            required_paths = [header],
            version_header = version_header,
            version_macro = version_macro,
            min_version = min_version,
        )
