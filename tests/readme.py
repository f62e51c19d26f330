"""The README's code blocks, for the tests that run them as written (so the README and what
is tested cannot drift apart)."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def block(after: str, language: str, nth: int = 0) -> str:
    """The `nth` fenced block in `language` after the first line that starts with `after`."""
    text = README.read_text()
    start = next(
        i for i, line in enumerate(text.splitlines(keepends=True)) if line.startswith(after)
    )
    rest = "".join(text.splitlines(keepends=True)[start:])
    fence = f"```{language}\n"
    for _ in range(nth + 1):
        rest = rest[rest.index(fence) + len(fence) :]
    return rest[: rest.index("```")]
