"""scripts/install_peers.sh (make peers): the shell parses, and the dependency list it installs is the
package's own minus the two it replaces (torch is pinned to 2.14.1; opencv-contrib replaces cv2)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

# The script reads pyproject.toml with tomllib, new in Python 3.11 (make peers needs 3.11+).
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install_peers.sh"


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_it_installs_every_dependency_but_torch_and_plain_opencv() -> None:
    # The script's own filter, run as it runs it (from the repository root).
    snippet = re.search(r"deps=\$\(\"\$PY\" - <<'PY'\n(.*?)\nPY\n", SCRIPT.read_text(), re.S)
    assert snippet, "install_peers.sh no longer lists the dependencies from pyproject.toml"
    out = subprocess.run(
        [sys.executable, "-c", snippet.group(1)], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.split(r"[<>=!~ ]", d)[0] for d in out]
    assert "torch" not in names and "opencv-python-headless" not in names
    assert sorted(out) == sorted(d for d in declared if not d.startswith(("torch", "opencv-python-headless")))
    assert "opencv-contrib-python-headless" in SCRIPT.read_text()


def test_copy_worktree_copies_the_tree_and_keeps_only_the_old_build(tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    (dest / "build").mkdir(parents=True)
    (dest / "build" / "object.o").write_text("kept: ninja's objects")
    (dest / "stale.py").write_text("a file the tree no longer has")
    subprocess.run(["bash", str(ROOT / "scripts" / "copy_worktree.sh"), str(dest)], cwd=ROOT, check=True)
    assert (dest / "setup.py").read_bytes() == (ROOT / "setup.py").read_bytes()
    assert (dest / "ops" / "bindings.cpp").is_file()
    assert (dest / "build" / "object.o").is_file()
    assert not (dest / "stale.py").exists()
    assert not (dest / ".venv").exists()  # ignored paths stay behind
