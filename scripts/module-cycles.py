#!/usr/bin/env python3
"""Import cycles between the modules of src/: prints each cycle and exits 1 if there is one.

Usage: python3 scripts/module-cycles.py [--graph]

A module is a file (src/a/b.rs or src/a/b/mod.rs is `a::b`). Module A depends on module B when
A's code (comments and `#[cfg(test)]` modules left out) names B in a path: `crate::b::...` (in `use` lines or in code), or `super::...` resolved
from A's place. Names are resolved to the longest module they start with, so `crate::a::b::Item`
is module `a::b` if it exists, else `a`. Edges between a module and its own ancestors or
descendants are left out: a parent declares its children and children use their parent's items,
which is how Rust modules are built, not a cycle of the design. What remains are edges between
modules that are not nested, and a cycle among those (found as strongly connected components) is
a web where a tree was meant. `--graph` prints every edge too.
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PATH = re.compile(r"\b(crate|super)((?:::(?:r#)?[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)::\{([^;]*)\};", re.S)


def module_of(path: Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts.pop()
    return tuple(parts)


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod tests { ... }` blocks (brace matching on the raw text)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def resolve(modules: set, start: tuple, segments: list) -> tuple:
    """The longest module named by `start` + `segments`."""
    best = start
    cur = list(start)
    for s in segments:
        cur.append(s)
        if tuple(cur) in modules:
            best = tuple(cur)
    return best


def main() -> int:
    files = sorted(p for p in SRC.rglob("*.rs"))
    modules = {module_of(p) for p in files}
    edges = {}
    for p in files:
        me = module_of(p)
        is_mod_file = p.stem in ("mod", "lib", "main")
        here = me if is_mod_file else me[:-1]  # `super` of a file module is its parent's parent
        text = strip_tests(p.read_text())
        # Comments (doc links included) name modules without depending on them.
        text = "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("//"))
        # Expand `use crate::{a::x, b}` groups into paths.
        paths = []
        for m in USE_GROUP.finditer(text):
            for item in re.split(r",(?![^{]*\})", m.group(2)):
                item = item.strip()
                if item:
                    paths.append((m.group(1), "::" + item.split("{")[0].rstrip(":")))
        paths += [(m.group(1), m.group(2)) for m in PATH.finditer(text)]
        for root, rest in paths:
            segs = [s.removeprefix("r#") for s in rest.split("::") if s and s != "self"]
            if root == "crate":
                base = ()
            else:
                base = here
                while segs and segs[0] == "super":
                    segs.pop(0)
                    base = base[:-1]
            target = resolve(modules, base, segs)
            if not target or target == me:
                continue
            nested = target[: len(me)] == me or me[: len(target)] == target
            if not nested:
                edges.setdefault(me, set()).add(target)
    if "--graph" in sys.argv:
        for a in sorted(edges):
            for b in sorted(edges[a]):
                print(f"{'::'.join(a)} -> {'::'.join(b)}")
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    for comp in sccs:
        names = sorted("::".join(c) for c in comp)
        print("cycle among: " + ", ".join(names))
        for a in sorted(comp):
            for b in sorted(edges.get(a, ())):
                if b in comp:
                    print(f"  {'::'.join(a)} -> {'::'.join(b)}")
    if not sccs:
        print(f"no import cycle among the {len(modules)} modules of src/")
    return 1 if sccs else 0


if __name__ == "__main__":
    sys.exit(main())
