#!/usr/bin/env python3
"""Module import cycles of one crate: `scripts/module-cycles.py spoke-agent/src`.

Every `crate::<module>` path in a file's code (not its comments) is an edge from the file's
top-level module to <module>; edges inside one top-level module are ignored. Test code (files
named `tests.rs` or `*_tests.rs`, and the `#[cfg(test)] mod` blocks that end a file) and the
`test_support` module are left out: they may use anything. Prints the graph and every cycle;
exits 1 when there is one.
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
top_level = set()
for p in root.iterdir():
    if p.suffix == ".rs" and p.stem not in ("lib", "main"):
        top_level.add(p.stem)
    elif p.is_dir():
        top_level.add(p.name)

def module_of(path: pathlib.Path) -> str:
    rel = path.relative_to(root).parts
    return "crate" if rel[0] in ("lib.rs", "main.rs") else rel[0].removesuffix(".rs")

def production_code(text: str) -> str:
    # The `#[cfg(test)]` modules at the end of a file are its tests.
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod ", text, re.M)
    if cut:
        text = text[: cut.start()]
    return "\n".join(l.split("//")[0] for l in text.splitlines())

edges = {m: set() for m in top_level | {"crate"}}
for path in sorted(root.rglob("*.rs")):
    if path.name == "tests.rs" or path.name.endswith("_tests.rs"):
        continue
    src = module_of(path)
    if src == "test_support":
        continue
    code = production_code(path.read_text())
    names = re.findall(r"\bcrate::(\w+)", code)
    for group in re.findall(r"\bcrate::\{([^}]*)\}", code):
        names += re.findall(r"(?:^|,)\s*(\w+)", group)
    for n in names:
        if n in top_level and n != src and src != "crate":
            edges[src].add(n)
        elif n not in top_level and src != "crate":
            edges[src].add("crate")  # an item of lib.rs itself

for m in sorted(edges):
    if edges[m]:
        print(f"{m} -> {', '.join(sorted(edges[m]))}")

# Cycles: strongly connected components (Tarjan) with more than one module.
index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))
for v in sorted(edges):
    if v not in index:
        visit(v)
for c in sccs:
    print("CYCLE:", " <-> ".join(c))
print("no module import cycle" if not sccs else f"{len(sccs)} cycle(s)")
sys.exit(1 if sccs else 0)
