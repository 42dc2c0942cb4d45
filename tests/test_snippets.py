"""Every ```python block of README.md and docs/guide.md runs as pasted.

Each block runs alone, as a script in a fresh Python process, in an empty
folder, without ``FASTGD_BACKEND``: what a reader gets who pastes it into a
file. A RuntimeWarning fails it too (fastgd's fallback and divergence
warnings are RuntimeWarnings, as are numpy's overflows): an example must not
show the reader one. Output that is not code is fenced as ```text and is not
run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import List, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ("README.md", os.path.join("docs", "guide.md"))
TIMEOUT_S = 120

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(document: str) -> List[Tuple[int, str]]:
    """(line number, code) of each ```python block of ``document`` (a path under ROOT)."""
    with open(os.path.join(ROOT, document), encoding="utf-8") as handle:
        text = handle.read()
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in _FENCE.finditer(text)]


BLOCKS = [(document, line, code) for document in DOCUMENTS for line, code in python_blocks(document)]


def test_the_documents_have_blocks():
    for document in DOCUMENTS:
        assert python_blocks(document), f"no ```python block found in {document}"


@pytest.mark.parametrize("document, line, code", BLOCKS, ids=[f"{d}:{n}" for d, n, _ in BLOCKS])
def test_block_runs_as_pasted(document, line, code, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "FASTGD_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, (
        f"the block at {document}:{line} failed (exit {done.returncode}):\n{code}\n"
        f"--- stderr ---\n{done.stderr[-4000:]}"
    )
