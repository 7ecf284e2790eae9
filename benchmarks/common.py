"""The one timing helper every benchmark uses: both sides in the same process, alternating,
warm-up first, several repeats, and the median of the per-repeat time ratios."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

# A side is (label, fn). fn() runs the work once; if it returns a float, that is its own
# measured time in seconds (setup excluded), otherwise the helper times the whole call.
Side = tuple[str, Callable[[], float | None]]


def default_device() -> torch.device:
    """cuda when present, else cpu (benchmarks run on whatever this machine has)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(device: torch.device | str | None = None) -> None:
    """Wait for queued GPU work so wall-clock times are real (no-op on CPU)."""
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], float | None], device: torch.device | str | None = None) -> float:
    """Seconds one call of `fn` takes (or the seconds it reports itself)."""
    sync(device)
    t0 = time.perf_counter()
    own = fn()
    sync(device)
    return (
        float(own)
        if isinstance(own, int | float) and not isinstance(own, bool)
        else time.perf_counter() - t0
    )


@dataclass
class Comparison:
    """One table row: side A against side B. `ratio` = median over repeats of time_B / time_A,
    so for "genda vs plain" it is genda's speed relative to plain (>1: A is faster)."""

    benchmark: str
    comparison: str
    side_a: str
    side_b: str
    a_seconds: list[float]
    b_seconds: list[float]
    work: float | None = None  # items per call (images), for a throughput column
    unit: str = "images"
    notes: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return statistics.median(b / a for a, b in zip(self.a_seconds, self.b_seconds, strict=True))

    def rate(self, seconds: list[float]) -> float | None:
        """Median items per second of one side (None without `work`)."""
        return self.work / statistics.median(seconds) if self.work else None

    def describe(self, which: str) -> str:
        """'label: 12.3 images/s' or 'label: 0.456 s' for side 'a' or 'b'."""
        label, secs = (
            (self.side_a, self.a_seconds) if which == "a" else (self.side_b, self.b_seconds)
        )
        rate = self.rate(secs)
        return (
            f"{label}: {rate:.3g} {self.unit}/s"
            if rate
            else f"{label}: {statistics.median(secs):.3g} s"
        )

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "ratio": self.ratio,
            "repeats": len(self.a_seconds),
            "a_per_s": self.rate(self.a_seconds),
            "b_per_s": self.rate(self.b_seconds),
        }


def compare(
    benchmark: str,
    comparison: str,
    a: Side,
    b: Side,
    repeats: int = 5,
    warmup: int = 1,
    work: float | None = None,
    unit: str = "images",
    device: torch.device | str | None = None,
    notes: dict | None = None,
) -> Comparison:
    """Time A and B alternately (ABBA order, so drift on a shared machine cancels) after
    `warmup` untimed calls of each; returns the row with every repeat kept."""
    (label_a, fa), (label_b, fb) = a, b
    for _ in range(warmup):
        fa()
        fb()
    ta, tb = [], []
    for i in range(repeats):
        if i % 2 == 0:
            ta.append(timed(fa, device))
            tb.append(timed(fb, device))
        else:
            tb.append(timed(fb, device))
            ta.append(timed(fa, device))
    return Comparison(
        benchmark, comparison, label_a, label_b, ta, tb, work, unit, dict(notes or {})
    )


def machine() -> dict:
    """CPU model, cores, torch version and device of this run."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    dev = default_device()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(dev),
        "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "env": {
            k: os.environ[k]
            for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")
            if k in os.environ
        },
    }
