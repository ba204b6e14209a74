"""The package as a user gets it: an sdist and a wheel that build and install away from the checkout.

The slow test builds the sdist (``python -m build --sdist``), installs it with pip in a fresh venv
(pip builds the wheel from it), installs that wheel in a second fresh venv, and runs the installed
``rcnn`` and two ops in each, far from src/. The venvs see this interpreter's third-party packages
(torch above all: no download, no second torch) through a .pth file naming a folder of links to
them, with rcnn_cli's own files left out, so only the freshly installed copy can be imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    # No PYTHONPATH: the tests often run with PYTHONPATH=src, which would hide the installed copy.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FORCE_CUDA")}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.skipif(torch.version.cuda is not None, reason="torch is a CUDA build: FORCE_CUDA=1 can work")
def test_force_cuda_on_a_cpu_torch_fails_with_the_reason(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"FORCE_CUDA": "1"}
    command = [sys.executable, "setup.py", "build_ext", "--build-temp", str(tmp_path)]
    command += ["--build-lib", str(tmp_path)]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert (
        f"rcnn_cli._C: FORCE_CUDA=1, but the CUDA kernels cannot be built: torch {torch.__version__} "
        "is a CPU build" in result.stderr
    )
    assert list(tmp_path.iterdir()) == []  # refused before compiling anything


def _fresh_venv(path: Path, links: Path) -> Path:
    """A venv without pip whose sys.path ends with `links` (this interpreter's packages)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "outer_packages.pth").write_text(f"{links}\n")
    return python


def _links_to_outer_packages(folder: Path) -> Path:
    """Links to every package of this interpreter's site-packages but rcnn_cli (and its .pth files:
    an editable install's would put src/ back on the path)."""
    folder.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        if entry.name.startswith(("rcnn_cli", "__editable__")) or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def _check_installed(python: Path, cwd: Path) -> None:
    venv = python.parent.parent
    rcnn = venv / "bin" / "rcnn"
    assert "propose" in _run([str(rcnn), "--help"], cwd).stdout
    version = _run([str(rcnn), "--version"], cwd).stdout
    assert "rcnn_cli._C: CPU" in version, version
    probe = (
        "import sys, torch, rcnn_cli\n"
        "from rcnn_cli.ops import roi_pool, nms\n"
        "assert rcnn_cli.__file__.startswith(sys.argv[1]), rcnn_cli.__file__\n"
        "x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)\n"
        "rois = torch.tensor([[0, 0, 0, 7, 7], [1, 2, 2, 5, 6]], dtype=torch.float32)\n"
        "out = roi_pool(x, rois, 2, 1.0)\n"
        "assert out.shape == (2, 3, 2, 2) and out[0, 0, 1, 1] == 63, out\n"
        "boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)\n"
        "assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]\n"
        "print(rcnn_cli.__file__)\n"
    )
    where = _run([str(python), "-c", probe, str(venv)], cwd).stdout
    assert str(venv) in where


@pytest.mark.slow
def test_sdist_and_wheel_build_and_install_in_fresh_venvs(tmp_path):
    pytest.importorskip("build", reason="python -m build: pip install build (the dev extra has it)")
    dist = tmp_path / "dist"
    build = [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(dist), str(REPO)]
    _run(build, tmp_path)
    (sdist,) = dist.glob("rcnn_cli-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {Path(*Path(name).parts[1:]).as_posix() for name in archive.getnames()}
    for needed in (
        "setup.py",
        "MANIFEST.in",
        "ops/bindings.cpp",
        "ops/arg_checks.h",
        "ops/cpu/vectorize.h",
        "ops/cuda/common.cuh",
        "ops/cuda/roi_align.cu",
        "ops/cuda/roi_align_dispatch.cpp",
        "src/rcnn_cli/data/sample/Annotations/BloodImage_00000.xml",
    ):
        assert needed in names, needed
    assert not [name for name in names if name.endswith((".so", ".o"))]

    links = _links_to_outer_packages(tmp_path / "outer")
    # `pip install rcnn_cli-*.tar.gz`, as a user runs it: pip unpacks the sdist, builds a wheel from
    # it (the one compile of this test, ~1.5 min on 2 cores) and installs that. pip keeps the wheel it
    # built from a named sdist in its cache (a private one here), so the same wheel then installs
    # in a second fresh venv without compiling the sources twice.
    cache = tmp_path / "pip-cache"
    from_sdist = _fresh_venv(tmp_path / "from_sdist", links)
    pip = [sys.executable, "-m", "pip", "--python", str(from_sdist), "--cache-dir", str(cache), "install"]
    _run([*pip, "-q", "--no-deps", "--no-build-isolation", str(sdist)], tmp_path)
    _check_installed(from_sdist, tmp_path)

    wheels = list(cache.glob("wheels/**/rcnn_cli-*.whl"))
    assert len(wheels) == 1, f"pip kept no wheel of the sdist in {cache}: {wheels}"
    (wheel,) = wheels
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert any(name.startswith("rcnn_cli/_C.") and name.endswith(".so") for name in names)
    assert "rcnn_cli/data/sample/Annotations/BloodImage_00000.xml" in names
    from_wheel = _fresh_venv(tmp_path / "from_wheel", links)
    pip = [sys.executable, "-m", "pip", "--python", str(from_wheel), "install", "-q", "--no-deps"]
    _run([*pip, str(wheel)], tmp_path)
    _check_installed(from_wheel, tmp_path)
