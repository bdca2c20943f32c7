"""Issue 21: the README's monitoring example is what the code prints."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _scenario() -> tuple[str, list[str]]:
    """The README's Python example of the March 2026 guideline change and the lines shown below it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)
    for i, (lang, code) in enumerate(blocks):
        if lang == "python" and "run_monitor(march" in code:
            kind, shown = blocks[i + 1]
            assert kind == "text", "the example's output must follow it in a ```text block"
            return code, shown.strip("\n").splitlines()
    raise AssertionError("README.md has no monitoring example with run_monitor(march ...)")


@pytest.mark.slow
def test_the_readme_example_prints_the_readme_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, shown = _scenario()
    assert any(" change: refer_rate for family_size=3+ children rose to " in line for line in shown)
    for name in ("examples", "datasets"):  # the example as run from a clone: relative paths, fresh history
        os.symlink(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert printed.getvalue().strip("\n").splitlines() == shown
    # the single line the README quotes as the job's mail (tests/test_readme.py re-runs it) is one of them
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    mailed = [b.strip() for lang, b in re.findall(r"```(\w*)\n(.*?)```", text, flags=re.S)
              if lang == "" and b.startswith("ALERT")]
    assert mailed and mailed[0] in shown
    assert (tmp_path / "history").is_dir() and any((tmp_path / "reports" / "monitor-demo").iterdir())
