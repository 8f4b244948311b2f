"""Compiler flags for stackalloc's own targets (not for external code)."""

STACKALLOC_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wnon-virtual-dtor",
    "-Wcast-align",
    "-Wno-sign-compare",
]

STACKALLOC_TEST_COPTS = STACKALLOC_COPTS
