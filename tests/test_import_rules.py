"""The rooms' import rules, checked on the source (every import, lazy ones included).

Rooms, low to high: kernel (genda.kernel, genda.errors, genda.targets) < models, diffusion, data, viz <
metrics < tasks < train < report / entry points. A room never imports a room above it. The few
imports that still cross a rule are listed in KNOWN with the reason; the list may only shrink."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "genda"
KERNEL = {"genda.kernel", "genda.errors", "genda.targets"}

# room -> genda packages/modules it may import (besides itself and the kernel)
ALLOWED = {
    "genda.kernel": set(), "genda.errors": set(), "genda.targets": set(),
    "genda.models": set(),
    "genda.diffusion": {"genda.models"},
    "genda.data": set(),
    "genda.viz": set(),
    "genda.metrics": {"genda.data", "genda.models", "genda.config"},
    "genda.tasks": {"genda.models", "genda.diffusion", "genda.data", "genda.metrics", "genda.viz"},
    "genda.train": {"genda.tasks", "genda.config", "genda.data", "genda.viz"},
    "genda.report": {"genda.config", "genda.data", "genda.viz"},  # reads run dirs, never trains
    # above the report: trains the manifest's runs (`python -m genda` per run), then builds it
    "genda.reproduce": {"genda.report", "genda.config"},
}

# (importing module, imported module): why it is still there
KNOWN: dict[tuple[str, str], str] = {}  # empty: checkpoint reading moved to genda.kernel


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _room(mod: str) -> str | None:
    for room in sorted(ALLOWED, key=len, reverse=True):
        if mod == room or mod.startswith(room + "."):
            return room
    return None


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("genda")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("genda"):
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _violations() -> dict[tuple[str, str], str]:
    found = {}
    for path in SRC.rglob("*.py"):
        mod = _module(path)
        room = _room(mod)
        if room is None:
            continue
        for imp in _imports(path):
            target_room = _room(imp)
            target = target_room or imp
            if target.startswith(("genda.kernel", "genda.errors", "genda.targets")):
                continue
            if target_room == room or imp == "genda" or imp.startswith(room):
                continue
            if any(imp == a or imp.startswith(a + ".") for a in ALLOWED[room]):
                continue
            if target_room is None and not any(imp.startswith(r) for r in ALLOWED):
                # entry-point modules (genda.config, genda.runs...) are above every room but metrics'
                found[(mod, imp)] = "imports an entry-level module"
                continue
            found[(mod, imp)] = f"{room} imports {target}"
    return found


def _known(mod: str, imp: str) -> bool:
    return any(mod == m and (imp == i or imp.startswith(i + ".")) for m, i in KNOWN)


def test_no_room_imports_a_room_above_it():
    bad = {k: v for k, v in _violations().items() if not _known(*k)}
    assert not bad, "\n".join(f"{m} -> {i}: {why}" for (m, i), why in sorted(bad.items()))


def test_kernel_imports_no_genda_room():
    for name in ("kernel", "errors", "targets"):
        imports = _imports(SRC / f"{name}.py")
        assert not {i for i in imports if not i.startswith(("genda.errors", "genda.kernel"))}, name


def test_known_exceptions_are_still_real():
    """An exception that no longer happens must leave the list (it may only shrink)."""
    seen = _violations()
    stale = [(m, i) for m, i in KNOWN if not any(sm == m and (si == i or si.startswith(i + "."))
                                                    for sm, si in seen)]
    assert not stale, f"remove from KNOWN: {stale}"
