"""The runner's ETA: how long the runs left should take, guessed only from runs alike."""

from __future__ import annotations

from genda.report.manifest import Run


def _kind(run: Run) -> tuple[str, str]:
    return run.entry.item, run.entry.experiment.split("_")[0]


def estimate(run: Run, runs: list[Run], finished: dict[str, float], previous: dict[str, float | None]) -> float | None:
    """Seconds `run` should take: its own last time, else the mean over finished runs of its entry,
    else of its kind (item and method); None when nothing alike has finished."""
    if previous.get(run.name):
        return previous[run.name]
    for alike in (lambda o: o.entry.id == run.entry.id, lambda o: _kind(o) == _kind(run)):
        times = [finished[o.name] for o in runs if o.name in finished and finished[o.name] > 1 and alike(o)]
        if times:
            return sum(times) / len(times)
    return None


def eta_text(runs: list[Run], finished: dict[str, float], previous: dict[str, float | None], jobs: int,
             elapsed: float) -> str:
    """'; N left, ETA ~M min (elapsed E min)', a lower bound ('ETA ≥ ~M min, K not timed yet') while
    some runs have no time like theirs: a fresh build's first long runs say nothing about the short ones."""
    left = [r for r in runs if r.name not in finished]
    if not left:
        return ""
    est = [estimate(r, runs, finished, previous) for r in left]
    known = [e for e in est if e is not None]
    if not known:
        return f"; {len(left)} runs left (no time measured for them yet)"
    mins = sum(known) / max(1, min(jobs, len(left))) / 60
    untimed = len(est) - len(known)
    span = f"ETA ≥ ~{mins:.0f} min, {untimed} not timed yet" if untimed else f"ETA ~{mins:.0f} min"
    return f"; {len(left)} left, {span} (elapsed {elapsed / 60:.0f} min)"
