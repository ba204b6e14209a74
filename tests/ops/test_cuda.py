"""CUDA kernels: nvcc compiles every .cu everywhere; parity tests run only on a GPU.

The .cu files include no torch header, so `nvcc -c` checks them on any machine with
the CUDA toolkit, GPU or not: a typo in a kernel fails CI here, not on the GPU box.
The same goes for the torch-free headers in ops/ that the CPU and CUDA kernels share
(ops/roi_pool_math.h, ...): each must compile on its own as CUDA.
The runtime tests need a CUDA device and an extension built with CUDA; elsewhere
they are skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from ops_reference import random_rois

from rcnn_cli.ops import _extension, batched_nms, nms, roi_align, roi_pool, spp_pool

REPO = Path(__file__).resolve().parents[2]
CUDA_SOURCES = sorted((REPO / "ops" / "cuda").glob("*.cu"))
# Headers of ops/ shared by the CPU (g++) and CUDA (nvcc) kernels: those without torch.
SHARED_HEADERS = sorted(
    p for p in (REPO / "ops").glob("*.h") if not re.search(r"#include <(ATen|torch|c10)/", p.read_text())
)
NVCC = shutil.which("nvcc")
TORCH_NVCC_NO = ("HALF_OPERATORS", "HALF_CONVERSIONS", "BFLOAT16_CONVERSIONS", "HALF2_OPERATORS")


def test_there_are_cuda_kernels():
    assert {p.stem for p in CUDA_SOURCES} >= {"roi_max_pool", "roi_align", "nms"}


def _nvcc_compiles(source: Path, output: Path) -> None:
    command = [NVCC, "-c", "-arch", "sm_80", "-std=c++17", "--expt-relaxed-constexpr"]
    command += ["-Werror", "all-warnings"]
    # The flags torch's CUDAExtension adds: no implicit half/bfloat16 conversions or operators.
    command += [f"-D__CUDA_NO_{what}__" for what in TORCH_NVCC_NO]
    command += ["-I", str(REPO / "ops"), "-o", str(output), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("source", CUDA_SOURCES, ids=lambda p: p.name)
def test_cuda_source_compiles_with_plain_nvcc(source, tmp_path):
    _nvcc_compiles(source, tmp_path / f"{source.stem}.o")


def test_there_are_shared_headers():
    assert {p.name for p in SHARED_HEADERS} >= {"host_device.h", "roi_pool_math.h", "roi_align_math.h"}


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("header", SHARED_HEADERS, ids=lambda p: p.name)
def test_shared_header_compiles_alone_with_plain_nvcc(header, tmp_path):
    source = tmp_path / f"{header.stem}.cu"
    source.write_text(f'#include "{header.name}"\n')
    _nvcc_compiles(source, tmp_path / f"{header.stem}.o")


def _cuda_ready() -> tuple[bool, str]:
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    if not _extension.has_kernel("roi_pool", torch.device("cuda")):
        return False, "rcnn_cli._C was built without CUDA kernels (FORCE_CUDA=1 make install)"
    return True, ""


_READY, _WHY = _cuda_ready()
needs_cuda = pytest.mark.skipif(not _READY, reason=_WHY)
SCALE = 1 / 4


def _inputs(dtype=torch.float32, num_rois=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 8, 12, 16, generator=g, dtype=dtype)
    return x, random_rois(num_rois, 2, 48, 64, g, dtype=dtype)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_max_pooling_cpu_cuda_parity(dtype):
    x, rois = _inputs(dtype)
    x.requires_grad_()
    xc = x.detach().cuda().requires_grad_()
    for pool in (lambda t, r: roi_pool(t, r, 7, SCALE), lambda t, r: spp_pool(t, r, (6, 3, 2, 1), SCALE)):
        out, out_cuda = pool(x, rois), pool(xc, rois.cuda())
        torch.testing.assert_close(out_cuda.cpu(), out, rtol=0, atol=0)
        weight = torch.randn_like(out)
        (grad,) = torch.autograd.grad((out * weight).sum(), x)
        (grad_cuda,) = torch.autograd.grad((out_cuda * weight.cuda()).sum(), xc)
        torch.testing.assert_close(grad_cuda.cpu(), grad)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_cpu_cuda_parity(aligned):
    x, rois = _inputs()
    x.requires_grad_()
    xc = x.detach().cuda().requires_grad_()
    out = roi_align(x, rois, 7, SCALE, -1, aligned)
    out_cuda = roi_align(xc, rois.cuda(), 7, SCALE, -1, aligned)
    torch.testing.assert_close(out_cuda.cpu(), out)
    weight = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * weight).sum(), x)
    (grad_cuda,) = torch.autograd.grad((out_cuda * weight.cuda()).sum(), xc)
    torch.testing.assert_close(grad_cuda.cpu(), grad, rtol=1e-4, atol=1e-4)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_close_to_float32(dtype):
    x, rois = _inputs()
    # The kernels take rois in the input's dtype (as torchvision), so the float32
    # reference gets the same rounded values.
    x32, rois32 = x.to(dtype).float(), rois.to(dtype).float()
    tol = {"rtol": 1e-2, "atol": 2e-2} if dtype == torch.float16 else {"rtol": 2e-2, "atol": 5e-2}
    xl = x.to(dtype).cuda().requires_grad_()
    out = roi_align(xl, rois.cuda(), 7, SCALE, 2, True)
    assert out.dtype == dtype
    expected = roi_align(x32, rois32, 7, SCALE, 2, True)
    torch.testing.assert_close(out.float().cpu(), expected, **tol)
    out.float().sum().backward()
    assert xl.grad.dtype == dtype and torch.isfinite(xl.grad.float()).all()
    pooled = roi_pool(x.to(dtype).cuda(), rois.cuda(), 7, SCALE)
    torch.testing.assert_close(pooled.float().cpu(), roi_pool(x32, rois32, 7, SCALE), rtol=0, atol=0)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nms_cpu_cuda_parity(dtype):
    g = torch.Generator().manual_seed(1)
    xy = torch.rand(3000, 2, generator=g) * 500
    boxes = torch.cat([xy, xy + torch.rand(3000, 2, generator=g) * 100], 1).to(dtype)
    scores = torch.rand(3000, generator=g).to(dtype)
    for threshold in (0.3, 0.5, 0.7):
        assert torch.equal(nms(boxes.cuda(), scores.cuda(), threshold).cpu(), nms(boxes, scores, threshold))
    idxs = torch.randint(10, (3000,), generator=g)
    expected = batched_nms(boxes, scores, idxs, 0.5)
    assert torch.equal(batched_nms(boxes.cuda(), scores.cuda(), idxs.cuda(), 0.5).cpu(), expected)


@needs_cuda
@pytest.mark.cuda
def test_equal_to_torchvision():
    torchvision = pytest.importorskip("torchvision")
    tv = torchvision.ops
    x, rois = _inputs()
    for device in ("cpu", "cuda"):
        xd, rd = x.to(device), rois.to(device)
        assert torch.equal(roi_pool(xd, rd, 7, SCALE), tv.roi_pool(xd, rd, 7, SCALE))
        for aligned in (False, True):
            torch.testing.assert_close(
                roi_align(xd, rd, 7, SCALE, -1, aligned), tv.roi_align(xd, rd, 7, SCALE, -1, aligned)
            )
        boxes, scores = rd[:, 1:], torch.rand(rd.shape[0], device=device)
        assert torch.equal(nms(boxes, scores, 0.5), tv.nms(boxes, scores, 0.5))


@needs_cuda
@pytest.mark.cuda
def test_gradcheck_on_cuda_in_float64():
    """The CUDA backward kernels against finite differences (float64, on the GPU), as on the CPU."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 6, 7, generator=g, dtype=torch.float64).cuda().requires_grad_()
    rois = random_rois(4, 1, 24, 28, g, dtype=torch.float64).cuda()
    checks = {
        "roi_pool": lambda t: roi_pool(t, rois, 3, 0.25),
        "spp_pool": lambda t: spp_pool(t, rois, (3, 1), 0.25),
        "roi_align": lambda t: roi_align(t, rois, 3, 0.25, 2, True),
    }
    for name, fn in checks.items():
        assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5), name
