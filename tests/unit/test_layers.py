"""Imports only flow downward: every part of `service` has a rank, and a module imports only
from parts ranked below its own (or from its own part). So the domain imports nothing of
the service, the store and the provider nothing of each other, the API nothing of the
workers nor the workers of the API (both take what they share from `service.runtime`), and
there is no cycle between parts. Read from the source, function-level imports included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "service"

RANK = {
    "service.domain": 0,
    "service.clock": 1,
    "service.metrics": 1,
    "service.logs": 1,
    "service.netguard": 1,
    "service.throttle": 1,
    "service.edge": 2,
    "service.rollup": 2,
    "service.settings": 3,
    "service.store": 4,
    "service.provider": 4,
    "service.runtime": 5,
    "service.outputs_admin": 5,
    "service.human": 5,
    "service.api": 6,
    "service.workers": 6,
    "service.app": 7,
    "service.cli": 8,
    "service.__main__": 9,
}


def part(module: str) -> str:
    """The part a module belongs to: its package below `service`, or itself."""
    pieces = module.split(".")
    return ".".join(pieces[:2]) if len(pieces) > 1 else module


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "service":
                found |= {f"service.{a.name}" for a in node.names}
            elif node.module.startswith("service."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("service.")}
    return found


def test_every_part_has_a_rank() -> None:
    assert {part(m) for m in modules()} - {"service"} == set(RANK)


def test_imports_only_flow_downward() -> None:
    upward = []
    for name, path in sorted(modules().items()):
        if name == "service":
            continue
        mine = part(name)
        for target in sorted(imported(path)):
            theirs = part(target)
            if theirs != mine and RANK[theirs] >= RANK[mine]:
                upward.append(f"{name} imports {target} ({RANK[mine]} -> {RANK[theirs]})")
    assert not upward, "\n".join(upward)


def test_the_api_and_the_workers_share_only_the_runtime() -> None:
    """The composition root (`service.app`) builds the shared services once and hands
    them to both; neither reaches into the other."""
    crossing = [
        f"{name} imports {target}"
        for name, path in modules().items()
        for target in imported(path)
        if {part(name), part(target)} == {"service.api", "service.workers"}
    ]
    assert not crossing
    assert any(part(t) == "service.runtime" for t in imported(ROOT / "api" / "context.py"))
