"""Offline stand-ins for repositories that Bazel 4.2.3 would download.

Bazel 4.2.3 as packaged by Debian references @rules_cc, @rules_java and
@remote_coverage_tools as soon as a cc_test is analysed, and would fetch them
from the network. These repository rules write minimal local equivalents:
the rules_cc/rules_java .bzl files re-export the native rules, and the
coverage tools are empty filegroups (coverage is not supported offline).
"""

_NATIVE_CC_RULES = [
    "cc_binary",
    "cc_import",
    "cc_library",
    "cc_proto_library",
    "cc_test",
    "cc_toolchain",
    "cc_toolchain_suite",
    "fdo_prefetch_hints",
    "fdo_profile",
    "objc_import",
    "objc_library",
]

_NATIVE_JAVA_RULES = [
    "java_binary",
    "java_import",
    "java_library",
    "java_lite_proto_library",
    "java_package_configuration",
    "java_plugin",
    "java_proto_library",
    "java_runtime",
    "java_test",
    "java_toolchain",
]

def _reexport(rules):
    lines = ['"""Offline stand-in: re-exports Bazel\'s native rules."""', ""]
    for rule in rules:
        lines.append("def %s(**kwargs):" % rule)
        lines.append("    native.%s(**kwargs)" % rule)
        lines.append("")
    return "\n".join(lines)

def _rules_cc_impl(ctx):
    ctx.file("WORKSPACE", 'workspace(name = "rules_cc")\n')
    ctx.file("BUILD", "")
    ctx.file("cc/BUILD", 'package(default_visibility = ["//visibility:public"])\n')
    ctx.file("cc/defs.bzl", _reexport(_NATIVE_CC_RULES))
    ctx.file("cc/find_cc_toolchain.bzl", "\n".join([
        '"""Offline stand-in for rules_cc\'s find_cc_toolchain."""',
        "",
        "def find_cc_toolchain(ctx):",
        "    return ctx.attr._cc_toolchain[cc_common.CcToolchainInfo]",
        "",
    ]))

def _rules_java_impl(ctx):
    ctx.file("WORKSPACE", 'workspace(name = "rules_java")\n')
    ctx.file("BUILD", "")
    ctx.file("java/BUILD", 'package(default_visibility = ["//visibility:public"])\n')
    ctx.file("java/defs.bzl", _reexport(_NATIVE_JAVA_RULES))

def _remote_coverage_tools_impl(ctx):
    ctx.file("WORKSPACE", 'workspace(name = "remote_coverage_tools")\n')
    ctx.file("BUILD", "\n".join([
        'package(default_visibility = ["//visibility:public"])',
        "",
        "# Coverage is not available offline; these only satisfy references.",
        'filegroup(name = "coverage_report_generator", srcs = [])',
        "",
        'filegroup(name = "lcov_merger", srcs = [])',
        "",
    ]))

offline_rules_cc = repository_rule(implementation = _rules_cc_impl)
offline_rules_java = repository_rule(implementation = _rules_java_impl)
offline_remote_coverage_tools = repository_rule(
    implementation = _remote_coverage_tools_impl,
)
