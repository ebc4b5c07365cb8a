#!/usr/bin/env python3
"""Checks the dependency tree the way `cargo deny` would check licenses and duplicates, with
nothing to install and no network: every crate in Cargo.lock's resolved tree must be under a
license expression that permissive licenses satisfy (OR: one side; AND: both sides), and crates
present in several versions are listed (informational: the ecosystem moves at its own pace).

Security advisories (RustSec) need the advisory database, which lives on GitHub and cannot be
fetched from the build machine; an unmaintained or vulnerable crate is replaced when it is known
(rustls-pemfile gave way to rustls-pki-types' PEM reader).

Usage: python3 scripts/deps-check.py   (exit 1 if a license is not allowed)
"""
import collections
import json
import re
import subprocess
import sys

ALLOWED = {
    "MIT", "MIT-0", "Apache-2.0", "BSD-1-Clause", "BSD-2-Clause", "BSD-3-Clause", "ISC", "Zlib",
    "Unicode-3.0", "Unicode-DFS-2016", "Unlicense", "CC0-1.0", "BSL-1.0", "0BSD", "CDLA-Permissive-2.0",
}


def tokens(expr):
    return re.findall(r"\(|\)|[A-Za-z0-9.+-]+", expr.replace("/", " OR "))


def satisfiable(expr):
    """Evaluates an SPDX expression: true if the allowed licenses can satisfy it."""
    toks = tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def primary():
        if peek() == "(":
            take()
            v = disjunction()
            take()  # ")"
            return v
        lic = take()
        if peek() == "WITH":
            take()
            take()  # the exception (LLVM-exception and the like) does not restrict use
        return lic in ALLOWED

    def conjunction():
        v = primary()
        while peek() == "AND":
            take()
            v = primary() and v
        return v

    def disjunction():
        v = conjunction()
        while peek() == "OR":
            take()
            v = conjunction() or v
        return v

    return disjunction()


def main():
    meta = json.loads(subprocess.check_output(["cargo", "metadata", "--format-version", "1", "--locked"]))
    members = set(meta["workspace_members"])
    resolved = {n["id"] for n in meta["resolve"]["nodes"]}
    bad = []
    versions = collections.defaultdict(set)
    for p in meta["packages"]:
        if p["id"] not in resolved or p["id"] in members:
            continue
        versions[p["name"]].add(p["version"])
        lic = p.get("license")
        if not lic or not satisfiable(lic):
            bad.append(f"{p['name']} {p['version']}: {lic or 'no license field'}")
    dupes = {n: sorted(v) for n, v in versions.items() if len(v) > 1}
    print(f"deps-check: {sum(len(v) for v in versions.values())} crates, {len(dupes)} in several versions")
    for n, v in sorted(dupes.items()):
        print(f"  duplicate: {n} {', '.join(v)}")
    for b in bad:
        print(f"  license not allowed: {b}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
