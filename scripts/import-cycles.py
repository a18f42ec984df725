#!/usr/bin/env python3
"""Finds import circles between the files of each crate of the project, and source files
longer than 600 lines outside the tests (ARCHITECTURE.md, "Checks").

Usage: scripts/import-cycles.py [ROOT]   (exit status 1 when either is found)

A file *imports* another when it names (in a `use` or in a `crate::`/`super::`/`self::` path) an
item defined in the other. Re-exports are followed to the file that defines the item, so
`use crate::TrainError` points at `error.rs`, not `lib.rs`. A parent module's file is a file like
any other: a child that uses its parent's items while the parent uses the child's forms a circle.
Unit tests (`#[cfg(test)] mod tests { ... }`, or any cfg naming `test`, at the bottom of a file) are left out. The check
prints every strongly connected group of two or more files, with the names that tie them.

Why a script and not `cargo modules dependencies --acyclic`: that tool builds rust-analyzer
(a long cold build on CI's two cores), and counts a child's `use super::*` in its unit tests.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

MAX_LINES = 600
ITEM = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:unsafe\s+)?(?:async\s+)?"
    r"(struct|enum|fn|trait|type|const|static|union)\s+([A-Za-z_][A-Za-z0-9_]*)",
    re.M,
)
MACRO = re.compile(r"macro_rules!\s*([A-Za-z_][A-Za-z0-9_]*)")
MOD_DECL = re.compile(r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;", re.M)
USE = re.compile(r"^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M | re.S)
PATH = re.compile(r"\b((?:crate|super|self)(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)")


def strip(text):
    """The file without comments, strings and its unit tests."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    m = re.search(r"#\[cfg\([^\]]*\btest\b[^\]]*\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+tests\s*\{", text)
    text = text[: m.start()] if m else text
    text = re.sub(r'(?<![A-Za-z0-9_])r(#*)"(?:.|\n)*?"\1', '""', text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def expand(tree):
    """`a::{b, c::{d, self}}` → ['a::b', 'a::c::d', 'a::c']."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"as\w+$", "", tree) if "as" in tree and "::" not in tree.rsplit("as", 1)[1] else tree]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rindex("}")]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    out = []
    for part in filter(None, parts):
        for sub in expand(part):
            out.append(prefix.rstrip(":") if sub == "self" else prefix + sub)
    return out


def alias(path):
    """'a::b as c' → ('a::b', 'c')."""
    m = re.match(r"(.*?)\s*\bas\s+(\w+)$", path)
    return (m.group(1), m.group(2)) if m else (path, path.split("::")[-1])


class Crate:
    def __init__(self, root_file):
        self.files = {}  # module path (tuple) -> file
        self.text = {}
        self.items = {}  # module -> set of names
        self.reexports = {}  # module -> {name: absolute path (tuple)}
        self.walk((), Path(root_file))

    def walk(self, module, path):
        text = strip(path.read_text())
        self.files[module] = path
        self.text[module] = text
        self.items[module] = {m.group(2) for m in ITEM.finditer(text)} | set(MACRO.findall(text))
        self.reexports[module] = {}
        base = path.parent if path.name in ("mod.rs", "lib.rs", "main.rs") else path.with_suffix("")
        for name in MOD_DECL.findall(text):
            for child in (base / f"{name}.rs", base / name / "mod.rs"):
                if child.exists():
                    self.walk(module + (name,), child)
                    break
        for m in USE.finditer(text):
            if not m.group(1):
                continue
            for raw in expand(m.group(2)):
                path_, name = alias(raw.replace(" ", ""))
                absolute = self.absolute(module, path_.split("::"))
                if absolute is not None:
                    self.reexports[module][name] = absolute

    def absolute(self, module, segments):
        """The path from the crate root, or None for another crate's."""
        segments = [s for s in segments if s]
        if not segments:
            return None
        head = segments[0]
        if head == "crate":
            return tuple(segments[1:])
        if head in ("self", "super"):
            base = list(module)
            while segments and segments[0] in ("self", "super"):
                if segments.pop(0) == "super":
                    base = base[:-1]
            return tuple(base + segments)
        if tuple(module) + (head,) in self.files:  # a child module named directly
            return tuple(module) + tuple(segments)
        return None

    def resolve(self, path, depth=0):
        """The module whose file defines what `path` names."""
        module = ()
        for i, segment in enumerate(path):
            if module + (segment,) in self.files:
                module = module + (segment,)
                continue
            if segment in self.items.get(module, ()) or depth > 8:
                return module
            target = self.reexports.get(module, {}).get(segment)
            if target is not None:
                return self.resolve(target + tuple(path[i + 1 :]), depth + 1)
            return module
        return module

    def edges(self):
        out = defaultdict(dict)
        for module, text in self.text.items():
            names = []
            for m in USE.finditer(text):
                names += [alias(p.replace(" ", ""))[0] for p in expand(m.group(2))]
            code = USE.sub("", text)  # `use` trees are expanded above
            names += [re.sub(r"\s", "", p) for p in PATH.findall(code)]
            # Paths that start at a child module (`driver::validate(...)`).
            for child in (m[-1] for m in self.files if m[:-1] == module and m):
                names += re.findall(rf"(?<![\w:])({child}(?:::[A-Za-z_][A-Za-z0-9_]*)+)", code)
            for name in names:
                absolute = self.absolute(module, name.split("::"))
                if absolute is None:
                    continue
                target = self.resolve(absolute)
                if target != module:
                    out[module].setdefault(target, name)
        return out


def cycles(edges, nodes):
    """Tarjan's strongly connected components of two or more nodes."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(group)

    for v in nodes:
        if v not in index:
            visit(v)
    return found


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    roots = [root / "src/main.rs", root / "web/src/lib.rs", root / "xtask/src/main.rs"]
    roots += sorted(root.glob("crates/*/src/lib.rs"))
    bad = 0
    for crate_root in filter(Path.exists, roots):
        crate = Crate(crate_root)
        edges = crate.edges()
        for group in cycles(edges, list(crate.files)):
            bad += 1
            print(f"import circle in {crate_root.parent.parent}:")
            members = set(group)
            for v in sorted(group):
                for w, name in sorted(edges[v].items()):
                    if w in members:
                        print(f"  {crate.files[v].relative_to(root)} -> {crate.files[w].relative_to(root)} ({name})")
        print(f"{crate_root.relative_to(root)}: {len(crate.files)} files checked")
    for path in sorted(root.glob("**/*.rs")):
        parts = path.relative_to(root).parts
        if parts[0] in ("target", "fuzz") or "tests" in parts or ".git" in parts:
            continue
        lines = path.read_text().count("\n")
        if lines > MAX_LINES:
            bad += 1
            print(f"{path.relative_to(root)}: {lines} lines, over {MAX_LINES}: split it by concept")
    if bad:
        sys.exit(1)
    print(f"no import circles, no source file over {MAX_LINES} lines")


if __name__ == "__main__":
    main()
