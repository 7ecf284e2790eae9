"""Speed knobs on this device: channels_last, bf16 autocast and torch.compile, each against the
plain fp32 step of bench_loop (DCGAN, DDPM UNet, DANN). A knob becomes a default for this device
only if it is clearly faster (B/A >= 1.05); on CPU a knob that slows things down stays off.
--quick skips torch.compile (30-65 s of compilation per network here)."""

from __future__ import annotations

import os
import time

from benchmarks.bench_loop import KINDS, Knobs, compose
from benchmarks.common import Comparison, compare, default_device, sync

KNOBS = {
    "channels_last": Knobs(channels_last=True),
    "bf16": Knobs(bf16=True),
    "compile": Knobs(compile=True),
}
WIN = 1.05  # a knob must save at least 5 % to be switched on


def _steps(plain, n: int):
    def fn() -> None:
        for _ in range(n):
            plain.step()

    return fn


def bench_knob(kind_name: str, knob: str, batch: int, steps: int, repeats: int) -> Comparison:
    """Knob on (A) vs fp32 baseline (B) for one step kind; the first (compiling) call is timed apart."""
    kind, device = KINDS[kind_name], default_device()
    cfg = compose(kind.experiment, kind.overrides(1000, batch))
    base, tuned = kind.plain(cfg, device, Knobs()), kind.plain(cfg, device, KNOBS[knob])
    sync(device)
    t0 = time.perf_counter()
    tuned.step()  # compiles when compile=True
    sync(device)
    first = time.perf_counter() - t0
    row = compare(
        "knobs",
        f"{kind_name}: {knob} ({kind.images(cfg)} img/step, {steps} steps)",
        (f"{knob} on", _steps(tuned, steps)),
        ("fp32 baseline", _steps(base, steps)),
        repeats=repeats,
        warmup=1,
        work=steps * kind.images(cfg),
        device=device,
    )
    row.notes = {"first_step_s": first}
    return row


def choose(rows: dict[str, dict[str, Comparison]]) -> dict[str, dict]:
    """Per knob: on for this device iff it wins on every measured step kind."""
    device = default_device().type
    out = {}
    for knob in KNOBS:
        ratios = {k: r[knob].ratio for k, r in rows.items() if knob in r}
        if ratios:
            on = all(v >= WIN for v in ratios.values())
            out[knob] = {
                "device": device,
                "on": on,
                "ratios": ratios,
                "reason": f"B/A {min(ratios.values()):.2f}-{max(ratios.values()):.2f} "
                f"({'all' if on else 'not all'} >= {WIN})",
            }
    return out


def run(quick: bool = False) -> dict:
    quick = quick or os.environ.get("GENDA_BENCH_QUICK") == "1"
    sizes = (
        {"dcgan": (8, 2), "ddpm": (8, 1), "dann": (16, 3)}
        if quick
        else {"dcgan": (32, 4), "ddpm": (16, 2), "dann": (64, 10)}
    )
    knobs = [k for k in KNOBS if not (quick and k == "compile")]
    rows: dict[str, dict[str, Comparison]] = {}
    skipped = {}
    for name, (batch, steps) in sizes.items():
        if not KINDS[name].ready():
            skipped[name] = f"{KINDS[name].task_module} or its experiment is not in the repo yet"
            continue
        rows[name] = {}
        for knob in knobs:
            # bf16 without bf16 units is ~20x slower on CPU: one small step is enough to show it
            slow = knob == "bf16" and default_device().type == "cpu"
            b, n = (max(4, batch // 4), 1) if slow else (batch, steps)
            rows[name][knob] = bench_knob(name, knob, b, n, repeats=1 if quick else 3)
    return {
        "rows": rows,
        "defaults": choose(rows),
        "skipped": skipped,
        "compile": "skipped (--quick)" if quick else "measured",
    }


if __name__ == "__main__":
    from benchmarks.__main__ import rows_of, table

    print(table(rows_of("knobs", run())))
