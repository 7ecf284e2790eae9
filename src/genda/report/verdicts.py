"""One verdict line per report section: the section's own numbers checked against what the
method should show (docs/protocols.md, "What the cpu report should show"), so a reader sees at a
glance what worked. Every check states its measured numbers; a check whose runs are missing says
so instead of passing."""

from __future__ import annotations

from collections.abc import Iterable
from statistics import mean

from genda.report import doc as D
from genda.report.records import RunRecord

# Targets (the numbers the verdicts check), in one place.
GAN_FID_GOAL = 80.0  # FID(B) on faces, >= 2,048 real val images
GAN_FACE_SHARE = 0.70  # B's face score as a share of the real val images' own score
COLLAPSE_BELOW = 0.25  # diversity ratio (generated / real per-pixel spread) that reads as collapse
DDIM_FACE_MIN = 25.0  # % HOG face score of the eta=0 samples
DDPM_ACC_MIN = 0.95  # evaluator accuracy on the 1,000 generated digits
DANN_GAIN = 5.0  # points over source only (mean over seeds)
IMPROVED_GAIN = 2.0  # points over DANN


def yes(ok: bool | None) -> str:
    return "—" if ok is None else ("**yes**" if ok else "**no**")


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return mean(vals) if vals else None


def line(checks: list[str]) -> D.Para:
    """The section's verdict paragraph: its checks separated by semicolons."""
    return D.Para("**Verdict** — " + "; ".join(checks) + ".")


# -- GAN ------------------------------------------------------------------------------------------
def _fid(recs: list[RunRecord]) -> float | None:
    return _mean(r.value("fid") for r in recs if r.ok)


def _kid(recs: list[RunRecord]) -> str:
    """'267.2 ± 2.0' (KID ×10³ ± std over subsets, first complete run) or '?'."""
    vals = [(r.value("kid"), r.value("kid_std")) for r in recs if r.ok and r.value("kid") is not None]
    if not vals:
        return "?"
    k, s = vals[0]
    return f"{1e3 * k:.1f} ± {1e3 * (s or 0):.1f}"


def diversity(recs: list[RunRecord]) -> float | None:
    return _mean(r.value("diversity") for r in recs if r.ok)


def gan(groups: dict[str, list[RunRecord]]) -> D.Para:
    """B < A by FID (with KID), FID(B) against the goal, B's face score against the val set's,
    and no collapse for every GAN row."""
    a, b = groups.get("gan_a"), groups.get("gan_b")
    checks = []
    if a and b and _fid(a) is not None and _fid(b) is not None:
        fa, fb = _fid(a), _fid(b)
        checks.append(f"B < A: {yes(fb < fa)}, FID {fb:.1f} vs {fa:.1f} (KID×10³ {_kid(b)} vs {_kid(a)})")
        checks.append(f"FID(B) ≤ {GAN_FID_GOAL:.0f}: {yes(fb <= GAN_FID_GOAL)} ({fb:.1f})")
        n_real = {int(r.value("n_real") or 0) for r in a + b if r.ok}
        if n_real and min(n_real) < 2048:
            checks.append(f"only {min(n_real)} real images (FID needs ≥ 2,048)")
    else:
        checks.append("B < A: — (runs of method A and B missing)")
    if b:
        fs, real = _mean(r.face_score() for r in b if r.ok), _mean(r.face_score(True) for r in b if r.ok)
        if fs is not None and real:
            want = GAN_FACE_SHARE * real
            checks.append(f"B's face score ≥ {GAN_FACE_SHARE:.0%} of the val set's: {yes(fs >= want)} "
                          f"({fs:.1f} % vs {GAN_FACE_SHARE:.2f} × {real:.1f} % = {want:.1f} %)")
    spreads = []
    for eid, recs in groups.items():
        d = diversity(recs)
        name = str(recs[0].run.entry.info.get("label", eid)).split(":")[0]
        spreads.append(f"{name} {'collapsed' if d is not None and d < COLLAPSE_BELOW else 'ok'} "
                       f"({'?' if d is None else f'{d:.2f}'})" if d is not None else f"{name} ?")
    if spreads:
        checks.append(f"no collapse (diversity ≥ {COLLAPSE_BELOW}): " + ", ".join(spreads))
    return line(checks)


# -- VAE ------------------------------------------------------------------------------------------
def vae(recs: list[RunRecord]) -> D.Para:
    """Validation reconstruction still falling at the last validation; samples are faces."""
    r = next((x for x in recs if x.ok), None)
    if r is None:
        return line(["no complete VAE run"])
    vals = [(row["step"], row["val/recon"]) for row in r.metrics if "val/recon" in row and "step" in row]
    checks = []
    if len(vals) >= 2:
        (s0, v0), (s1, v1) = vals[-2], vals[-1]
        best_step = min(vals, key=lambda sv: sv[1])[0]
        checks.append(f"val reconstruction still falls at the last validation: {yes(v1 < v0)} "
                      f"({v0:.4f} at step {s0} → {v1:.4f} at step {s1}; lowest at step {best_step})")
    else:
        checks.append("val reconstruction: fewer than two validations logged")
    fs, real = r.face_score(), r.face_score(True)
    if fs is not None:
        checks.append(f"samples are faces: {fs:.1f} % ({r.face_detector}; real val images {real:.1f} %)"
                      if real is not None else f"samples are faces: {fs:.1f} % ({r.face_detector})")
    return line(checks)


# -- DDIM / DDPM ----------------------------------------------------------------------------------
def ddim(eta0: list[RunRecord]) -> D.Para:
    fs = _mean(r.face_score() for r in eta0 if r.ok)
    if fs is None:
        return line(["face score of the η = 0 samples not recorded"])
    real = _mean(r.face_score(True) for r in eta0 if r.ok)
    tail = f"; real val faces at the same size {real:.1f} %" if real is not None else ""
    return line([f"η = 0 samples are faces (HOG ≥ {DDIM_FACE_MIN:.0f} %): "
                 f"{yes(fs >= DDIM_FACE_MIN)} ({fs:.1f} %{tail})"])


def ddpm(recs: list[RunRecord]) -> D.Para:
    acc = _mean(r.value("accuracy") for r in recs if r.ok)
    if acc is None:
        return line(["digit accuracy not recorded (no evaluator?)"])
    return line([f"evaluator accuracy ≥ {DDPM_ACC_MIN:.0%}: {yes(acc >= DDPM_ACC_MIN)} ({100 * acc:.1f} %)"])


# -- UDA ------------------------------------------------------------------------------------------
def _acc(recs: list[RunRecord] | None) -> float | None:
    return None if not recs else _mean(100.0 * v for v in (r.value("target_acc") for r in recs if r.ok)
                                       if v is not None)


def uda(pair: str, by: dict[str, list[RunRecord]], improved: Iterable[str], names: dict[str, str]) -> D.Para:
    """DANN (and DANN from source only) ≥ source only + 5; ADDA ≥ source only; the improved
    method(s) ≥ DANN + 2; and no adapted run below the source-only run of its seed."""
    so, dann = _acc(by.get("source_only")), _acc(by.get("dann"))
    checks = []
    if so is None:
        return line([f"{pair}: no source-only run to compare with"])
    for m, v in (("dann", dann), ("dann_ft", _acc(by.get("dann_ft")))):
        if v is not None:
            checks.append(f"{names.get(m, m)} ≥ source only + {DANN_GAIN:.0f}: {yes(v >= so + DANN_GAIN)} "
                          f"({v:.1f} vs {so:.1f})")
    adda = _acc(by.get("adda"))
    if adda is not None:
        checks.append(f"ADDA ≥ source only: {yes(adda >= so)} ({adda:.1f} vs {so:.1f})")
    for m in improved:
        v = _acc(by.get(m))
        if v is not None and dann is not None:
            checks.append(f"{names.get(m, m)} ≥ DANN + {IMPROVED_GAIN:.0f}: "
                          f"{yes(v >= dann + IMPROVED_GAIN)} ({v:.1f} vs {dann:.1f})")
    base = {r.run.seed: r.value("target_acc") for r in by.get("source_only", []) if r.ok}
    below = [f"{names.get(m, m)} seed {r.run.seed}" for m, recs in by.items()
             if m not in ("source_only", "target_only") for r in recs
             if r.ok and base.get(r.run.seed) is not None and r.value("target_acc") is not None
             and r.value("target_acc") < base[r.run.seed]]
    checks.append("no adapted run below its seed's source-only run: "
                  + (yes(True) if not below else f"{yes(False)} ({', '.join(below)})"))
    return line([f"{pair}: " + checks[0], *checks[1:]])
