"""The dependency rule of ARCHITECTURE.md, checked on every import statement.

domain imports nothing of ours outside domain; runtime never imports http, and payments only
through `payments.ports`;
persistence never imports runtime or http; only payments imports stripe.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "allotment"

FORBIDDEN = {
    "domain": (
        "allotment.runtime",
        "allotment.persistence",
        "allotment.http",
        "allotment.payments",
        "allotment.config",
        "allotment.wiring",
        "allotment.cli",
        "allotment.loading",
        "anyio",
        "asyncio",
        "litestar",
        "duckdb",
        "stripe",
        "time",
        "logging",
    ),
    "runtime": (
        "allotment.http",
        "allotment.payments.stripe_gateway",  # runtime sees payments only through its port
        "allotment.payments.webhooks",
        "allotment.cli",
        "allotment.wiring",
        "litestar",
        "stripe",
    ),
    "persistence": (
        "allotment.runtime",
        "allotment.http",
        "allotment.payments",
        "litestar",
        "stripe",
    ),
    "http": ("stripe", "duckdb"),
}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_respect_the_dependency_rule(layer: str) -> None:
    offences = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / layer).rglob("*.py"))
        for name in _imports(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[layer])
    ]
    assert offences == []


def test_domain_never_reads_the_clock() -> None:
    """Time enters the domain only as an argument (ARCHITECTURE principle 4)."""
    offences = [
        str(path.relative_to(SRC))
        for path in (SRC / "domain").rglob("*.py")
        if ".now(" in path.read_text()
        or "utcnow" in path.read_text()
        or "today(" in path.read_text()
    ]
    assert offences == []


def test_every_public_module_declares_a_tuple_all() -> None:
    missing = []
    for path in SRC.rglob("*.py"):
        if path.name == "__main__.py":
            continue
        tree = ast.parse(path.read_text())
        declared = [
            node
            for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            and any(
                isinstance(t, ast.Name) and t.id == "__all__"
                for t in ([node.target] if isinstance(node, ast.AnnAssign) else node.targets)
            )
        ]
        if not declared:
            missing.append(str(path.relative_to(SRC)))
    assert missing == []


def test_only_payments_imports_stripe() -> None:
    offences = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.parent.name != "payments"
        and any(n == "stripe" or n.startswith("stripe.") for n in _imports(path))
    ]
    assert offences == []
