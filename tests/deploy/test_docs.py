"""The repository explains itself: what the code relies on from the public contract and
from ModelsLab's real behaviour is in docs/, every public setting named there is a real
one, and no file cites a document the repository does not hold."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(
    r"CONTRACT\.md|PROVIDER-NOTES\.md|DESIGN-NOTES\.md|ARCHITECTURE\.md|\.\./shared"
)


def tracked() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / n for n in names if not n.endswith((".png", ".lock", "package-lock.json"))]


def test_no_file_cites_a_document_outside_the_repository() -> None:
    citing = [
        str(p.relative_to(ROOT))
        for p in tracked()
        if p.is_file() and p != Path(__file__) and OUTSIDE.search(p.read_text(errors="replace"))
    ]
    assert not citing


def test_docs_name_real_settings_and_the_modules_cite_docs_that_exist() -> None:
    from service.settings import Settings

    contract = (ROOT / "docs" / "contract.md").read_text()
    named = set(re.findall(r"`([A-Z][A-Z_]+)`", contract.split("## Settings", 1)[1].split("##")[0]))
    assert named and named <= {f.upper() for f in Settings.model_fields}
    cited = {
        m
        for p in tracked()
        if p.suffix == ".py"
        for m in re.findall(r"docs/[a-z_-]+\.md", p.read_text(errors="replace"))
    }
    assert cited and all((ROOT / c).is_file() for c in cited), cited
