#!/usr/bin/env python3
"""The README's "Use from your workspace" section is this workspace, word for word.

    readme_test.py README.md FILE...

Every fenced code block of that section whose first line names a file of this
workspace ("# WORKSPACE", "# BUILD", "// boost_fiber_example.cc: ...") must
appear in that file as consecutive lines, the naming line aside, and every
FILE given must be shown by a block. One difference is allowed, and only on the
line that says where stackalloc is: the README's path "/path/to/stackalloc"
is "../.." here.
"""

import os
import re
import sys

SECTION = "## Use from your workspace"
README_PATH = '"/path/to/stackalloc"'
OUR_PATH = '"../.."'


def blocks(readme):
    """The fenced code blocks of the section, as lists of lines."""
    start = readme.find("\n" + SECTION + "\n")
    if start < 0:
        sys.exit("README.md has no section %r" % SECTION)
    rest = readme[start + len(SECTION) + 2:]
    end = re.search(r"^## ", rest, re.M)
    section = rest[:end.start()] if end else rest
    return [b.split("\n") for b in re.findall(r"```[a-z]*\n(.*?)\n```", section,
                                              re.S)]


def contains(lines, block):
    n = len(block)
    return any(lines[i:i + n] == block for i in range(len(lines) - n + 1))


def main(argv):
    with open(argv[1]) as f:
        readme = f.read()
    files = {os.path.basename(p): p for p in argv[2:]}
    shown = set()
    failures = []
    for block in blocks(readme):
        m = re.fullmatch(r"(?:#|//) ([\w.]+)(?::.*)?", block[0])
        if not m or m.group(1) not in files:
            continue
        name = m.group(1)
        shown.add(name)
        body = [line.replace(README_PATH, OUR_PATH) for line in block[1:]]
        with open(files[name]) as f:
            lines = f.read().split("\n")
        if not contains(lines, body):
            failures.append("README's block for %s is not in %s, line for "
                            "line:\n  %s" % (name, files[name],
                                             "\n  ".join(body)))
    for name in sorted(set(files) - shown):
        failures.append("README's section %r shows no block for %s" %
                        (SECTION, name))
    for failure in failures:
        print("FAILED: " + failure)
    if not failures:
        print("README and this workspace agree: %s" % ", ".join(sorted(shown)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
