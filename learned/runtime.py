"""Device and precision choices shared by training and inference.

``device``: ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``
(``"cuda:1"`` etc. also work). ``precision``: ``"fp32"`` or ``"bf16"`` (autocast: the
convolutions run in bfloat16, parameters, optimizer and the Phi products stay float32),
or ``"auto"``: bf16 where bfloat16 is markedly faster: CUDA GPUs with bf16 and CPUs with
AMX tiles; else fp32. (On the development CPU, AVX512-BF16 without AMX, bf16 ISTA-Net
training measured 0.65-0.76x the speed of fp32 side by side, so "auto" keeps fp32 there.)

``threads``: torch's intra-op threads (None = torch's default, one per core). On a CPU
shared with other busy processes, 1 thread was 3x faster than 2 in our measurement
(OpenMP threads wait on each other when one is descheduled).

>>> resolve_device("cpu")
'cpu'
>>> resolve_precision("fp32", "cpu")
'fp32'
"""

import contextlib

import torch

from cs_bench.errors import CSBenchError

from .options import DEVICES, PRECISIONS  # noqa: F401 - DEVICES: part of this interface


def resolve_device(device="auto"):
    """'auto' -> 'cuda' or 'cpu'; a clear error for CUDA on a machine without it."""
    device = str(device or "auto").lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CSBenchError(f"device '{device}' requested but CUDA is not available "
                               f"(torch {torch.__version__}); use --device cpu or auto")
        return device
    if device != "cpu":
        raise CSBenchError(f"unknown device '{device}'; valid: auto, cpu, cuda")
    return device


def bf16_native(device):
    """Whether ``device`` computes bfloat16 in hardware (AVX512-BF16 / AMX, CUDA bf16)."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def bf16_pays_off(device):
    """Whether "auto" picks bf16 on ``device``: CUDA with bf16, or a CPU with AMX tiles."""
    if str(device).startswith("cuda"):
        return bf16_native(device)
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def default_batch(arch, device):
    """Blocks per forward pass at inference when ``batch`` is not given.

    On a CPU the convolutional networks run fastest in small batches whose activations stay
    in cache: ISTA-Net, one thread, this project's Xeon: 267 blocks/s at 32 against 124 at
    1024 (8: 255, 64: 222, 256: 123). SDA is three matrix products and likes large batches,
    as does every network on a GPU.

    >>> default_batch("ista-net", "cpu"), default_batch("sda", "cpu"), default_batch("ista-net", "cuda")
    (32, 1024, 1024)
    """
    from .spec import ARCHS

    if torch.device(device).type == "cpu":
        return ARCHS[arch].cpu_batch if arch in ARCHS else 32
    return 1024


def set_threads(threads):
    """Set torch's intra-op thread count (None or 0: leave torch's default)."""
    if threads:
        torch.set_num_threads(int(threads))


def resolve_precision(precision, device):
    precision = str(precision or "auto").lower()
    if precision not in PRECISIONS:
        raise CSBenchError(f"unknown precision '{precision}'; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if bf16_pays_off(device) else "fp32"
    return precision


def autocast(precision, device):
    """The autocast context for ``precision`` ("fp32" gives a no-op context)."""
    if precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
