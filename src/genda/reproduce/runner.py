"""Trains the manifest's runs: one `python -m genda` subprocess per run, each in a fixed run dir.

A run is skipped when its `status.json` says complete AND its `config.yaml` equals the config
Hydra composes now from the same overrides (so an edited experiment, manifest or default is
rerun, and nothing else; keys that cannot change a result, `NOT_RESULTS`, are not compared). An unfinished run with the same config resumes from
`checkpoints/last.ckpt` (`trainer.resume=auto`); one whose config changed is moved to
`<root>/<scale>/.stale/` and started afresh. A failing run does not stop the others: the
runner writes `runner.json` (state, last stderr line) into its run dir for the report.

SIGTERM/SIGINT to the runner are forwarded to the runs it started (each in its own session, so a
terminal's Ctrl-C reaches them once, through the runner): they write their checkpoints and exit,
are recorded as interrupted, no further run starts, and the runner exits 128 + the signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from genda.config import CONF_DIR
from genda.report.manifest import Manifest, Run, report_group
from genda.report.records import (
    FINISHED_FORMAT,
    RUNNER_FILE,
    RUNNER_LAST_FILE,
    read_json,
    saved_config,
)
from genda.reproduce.eta import estimate, eta_text  # noqa: F401 - re-exported (their former home)

LOG_FILE = "runner.log"
NOT_RESULTS = ("logger", "group", "tags", "trainer.progress", "trainer.resume")
TAG = "[reproduce]"


def command_overrides(run: Run, scale: str, group: str, extra: list[str]) -> list[str]:
    """Every job override of a run (what its config is composed from), hydra.* excluded."""
    return [
        *run.overrides(),
        f"scale={scale}",
        f"group={group}",
        "trainer.resume=auto",
        "trainer.progress=false",
        *extra,
    ]


def compose_config(overrides: list[str]) -> dict | None:
    """The resolved config `python -m genda` would run with, as plain data (None if it fails)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from genda.config import register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
            text = OmegaConf.to_yaml(cfg, resolve=True)
    except Exception:  # any compose error: the subprocess will report it properly
        return None
    finally:
        GlobalHydra.instance().clear()
    return OmegaConf.to_container(OmegaConf.create(text))


class _Stop:
    """The first SIGTERM/SIGINT the runner receives, and the live runs to forward it to."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.procs: set[subprocess.Popen] = set()

    def handle(self, signum: int, frame) -> None:
        # no locks: it runs between bytecodes of any thread
        if self.signum is None:
            self.signum = signum
        for proc in list(self.procs):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    def start(self, proc: subprocess.Popen) -> None:
        self.procs.add(proc)
        if self.signum is not None:  # the signal came while this run was starting
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.signum)


_STOP = _Stop()


@dataclass
class Outcome:
    """What the runner did with one run: skipped | ran | resumed; its final state and error."""

    run: Run
    action: str
    state: str
    seconds: float = 0.0
    error: str | None = None


def _results_part(cfg: dict | None) -> dict | None:
    """The config without `NOT_RESULTS` keys (W&B settings, progress bar, resume switch)."""
    if cfg is None:
        return None
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    for key in NOT_RESULTS:
        head, _, leaf = key.partition(".")
        if leaf and isinstance(out.get(head), dict):
            out[head].pop(leaf, None)
        elif not leaf:
            out.pop(head, None)
    return out


def _newer_inputs(run: Run) -> bool:
    """Whether a run it `uses` has a checkpoint written after this run started (config.yaml's
    time): retrained since, so this run's result is out of date although its config is the same."""
    cfg = run.run_dir / "config.yaml"
    if not cfg.is_file():
        return False
    ckpts = [p / "checkpoints" / "last.ckpt" for _, p in run.uses]
    return any(c.is_file() and c.stat().st_mtime > cfg.stat().st_mtime for c in ckpts)


def plan(run: Run, wanted: dict | None) -> str:
    """'skip' (complete, same config), 'resume' (same config, unfinished) or 'fresh' (also when a
    run it uses was retrained after it started)."""
    status = read_json(run.run_dir / "status.json") or {}
    same = wanted is not None and _results_part(saved_config(run.run_dir)) == _results_part(wanted)
    same = same and not _newer_inputs(run)
    if same and status.get("state") == "complete":
        return "skip"
    if same and (run.run_dir / "checkpoints" / "last.ckpt").is_file():
        return "resume"
    return "fresh"


def _clear(run: Run, root: Path, scale: str) -> None:
    """Before a fresh start: keep an old run's results under `.stale/`, drop a bare failure."""
    if not run.run_dir.exists():
        return
    if not (run.run_dir / "config.yaml").is_file():
        shutil.rmtree(run.run_dir)
        return
    stale = (
        root / scale / ".stale" / f"{run.name.replace('/', '__')}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    stale.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run.run_dir), stale)


def _last_error_line(log: Path) -> str:
    lines = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("genda: error:")]
    return (errors or lines or ["no output"])[-1]


def execute(run: Run, overrides: list[str], action: str, env: dict | None = None) -> Outcome:
    """Run `python -m genda` for one run, its output in `runner.log`; record the outcome."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    log = run.run_dir / LOG_FILE
    cmd = [sys.executable, "-m", "genda", *overrides, f"hydra.run.dir={run.run_dir}"]
    t0 = time.time()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(
            cmd,
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=os.getcwd(),
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=True,  # signals reach it once, forwarded by the runner (_Stop)
        )
        _STOP.start(proc)
        try:
            returncode = proc.wait()  # a forwarded signal: the run checkpoints, then exits 130/143
        finally:
            _STOP.procs.discard(proc)
    status = read_json(run.run_dir / "status.json") or {}
    if returncode == 0:
        state = status.get("state", "failed")
    else:
        state = "interrupted" if status.get("state") == "interrupted" else "failed"
    error = None if state == "complete" else _last_error_line(log)
    out = Outcome(run, action, state, time.time() - t0, error)
    _record(out, overrides, returncode)
    return out


def _record(out: Outcome, overrides: list[str], returncode: int | None) -> None:
    """`runner.json` in the run dir: the outcome the report reads (state, error, time)."""
    out.run.run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "state": out.state,
        "action": out.action,
        "returncode": returncode,
        "error": out.error,
        "seconds": round(out.seconds, 1),
        "overrides": overrides,
        "finished": time.strftime(FINISHED_FORMAT),
    }
    (out.run.run_dir / RUNNER_FILE).write_text(json.dumps(record, indent=2) + "\n")


def missing_inputs(run: Run, runs: list[Run], done: dict[str, threading.Event], states: dict[str, str]) -> str | None:
    """Wait for the runs `run` uses that this invocation trains; None when each is complete (here
    or from an earlier build), else why not (the run is then not started)."""
    by_dir = {r.run_dir.resolve(): r for r in runs}
    for key, path in run.uses:
        dep = by_dir.get(path)
        if dep is not None:
            done[dep.name].wait()
            state = states.get(dep.name, "not started")
        else:
            state = (read_json(path / "status.json") or {}).get("state", "not trained")
        if state != "complete":
            return f"{key} needs the run {path}, which is {state}"
    return None


def train_evaluators(runs: list[Run], scale: str, extra: list[str], say=print) -> None:
    """Before any run starts: train (or find cached) the digit evaluator each run's entry names
    (`evaluator: <domain>` in the manifest) with `python -m genda.evaluate train-evaluator`, so the
    runs only load it. A failure is reported in one line; those runs then record no accuracy."""
    domains = list(dict.fromkeys(str(d) for r in runs if (d := r.entry.info.get("evaluator"))))
    passed = [o for o in extra if o.lstrip("+~").startswith(("paths.", "logger."))]
    for domain in domains:
        if _STOP.signum is not None:
            return
        cmd = [sys.executable, "-m", "genda.evaluate", "train-evaluator", "--domain", domain,
               "--scale", scale, *passed]
        say(f"{TAG} evaluator for {domain} ({scale}): {' '.join(cmd[1:])}")
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        _STOP.start(proc)
        try:
            out, _ = proc.communicate()
        finally:
            _STOP.procs.discard(proc)
        lines = [x for x in (out or "").splitlines() if x.strip()]
        last = lines[-1] if lines else "no output"
        if proc.returncode == 0:
            say(f"{TAG} evaluator for {domain}: ready in {time.time() - t0:.0f} s ({last})")
        else:
            say(f"{TAG} evaluator for {domain} failed (exit {proc.returncode}): {last}; "
                "its runs will record no digit accuracy")


def threads_per_job(jobs: int) -> dict[str, str]:
    """Environment for one of `jobs` parallel runs: an equal share of the cores each, so the
    runs do not oversubscribe the CPU (torch's OpenMP pool spins when it is oversubscribed)."""
    if jobs <= 1:
        return {}
    n = max(1, (os.cpu_count() or 1) // jobs)
    return {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}


def run_manifest(
    manifest: Manifest,
    scale: str,
    root: Path,
    extra: list[str] | None = None,
    only: str | None = None,
    seeds: int | None = None,
    say=print,
    jobs: int = 1,
) -> list[Outcome]:
    """Run (or skip, or resume) every run of the manifest at `scale`.

    `jobs` > 1 runs that many `python -m genda` processes at once, each with an equal share of
    the cores: on a small CPU several small models train faster side by side than one after
    another with all threads each (see BENCHMARKS.md). Outcomes keep the manifest's order.
    """
    runs = manifest.expand(scale, root, only, seeds)
    group = report_group(manifest, scale)
    env = threads_per_job(jobs)
    lock = threading.Lock()

    # ETA: each run's own time from its last runner.json (an earlier build at this scale), else
    # the mean of finished runs of the same entry, else of the same method (experiment name's
    # first word) and item; runs with none of these are counted, not guessed
    previous = {
        r.name: float((read_json(r.run_dir / RUNNER_FILE) or {}).get("seconds") or 0) or None
        for r in runs
    }
    finished: dict[str, float] = {}
    started = time.time()
    # runs that others `use` (manifest order puts them first): each run signals when it is done
    done = {r.name: threading.Event() for r in runs}
    states: dict[str, str] = {}

    def eta() -> str:
        return eta_text(runs, finished, previous, jobs, time.time() - started)

    def one(i: int, run: Run) -> Outcome:
        out = None
        try:
            out = _one(i, run)
            return out
        finally:  # the state first: a run waiting on this one reads it when woken
            states[run.name] = out.state if out else "failed"
            done[run.name].set()

    def _one(i: int, run: Run) -> Outcome:
        if _STOP.signum is not None:
            return Outcome(run, "not started", "not started")
        overrides = command_overrides(run, scale, group, list(extra or []))
        why = missing_inputs(run, runs, done, states) if run.uses else None
        if why is not None:
            out = Outcome(run, "not started", "not started" if _STOP.signum is not None else "failed", error=why)
            if out.state == "failed":  # an earlier result of it read the old inputs: set aside
                _clear(run, root, scale)
                _record(out, overrides, None)
                with lock:
                    finished[run.name] = 0.0
                say(f"{TAG} ({i}/{len(runs)}) {run.name}: not started ({why}){eta()}")
            return out
        with lock:  # Hydra's global state: compose one config at a time
            action = plan(run, compose_config(overrides))
        tag = f"{TAG} ({i}/{len(runs)}) {run.name}"
        if action == "skip":
            with lock:
                finished[run.name] = 0.0
            say(f"{tag}: complete, same config: skipped{headline(run.run_dir)}{eta()}")
            return Outcome(run, "skipped", "complete")
        if action == "fresh":
            _clear(run, root, scale)
        say(f"{tag}: {'resuming' if action == 'resume' else 'running'} ...")
        out = execute(run, overrides, "resumed" if action == "resume" else "ran", env)
        with lock:
            finished[run.name] = out.seconds
        say(
            f"{tag}: {out.state} in {out.seconds:.0f} s"
            + (f" ({out.error})" if out.error else "")
            + (headline(run.run_dir) if out.state == "complete" else "")
            + eta()
        )
        return out

    _STOP.signum = None
    main = threading.current_thread() is threading.main_thread()
    old = (
        {s: signal.signal(s, _STOP.handle) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
    )
    try:
        train_evaluators(runs, scale, list(extra or []), say)
        if jobs <= 1:
            outcomes = [one(i, run) for i, run in enumerate(runs, 1)]
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                outcomes = list(pool.map(one, range(1, len(runs) + 1), runs))
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    _write_log(root / scale, outcomes)
    if _STOP.signum is not None:
        name = signal.Signals(_STOP.signum).name
        done = [o.run.name for o in outcomes if o.state == "interrupted"]
        say(
            f"{TAG} {name}: stopped; interrupted (checkpointed, resumed by the next run): "
            f"{', '.join(done) or 'none'}"
        )
        raise SystemExit(128 + _STOP.signum)
    return outcomes


_HEADLINES = (
    ("fid", "FID {:.1f}"),
    ("kid", "KID {:.4f}"),
    ("accuracy", "accuracy {:.2%}"),
    ("target_acc", "target acc {:.2%}"),
    ("acc", "acc {:.2%}"),
    ("mse", "MSE {:.2f}"),
    ("loss", "loss {:.4g}"),
)


def headline(run_dir: Path) -> str:
    """`: FID 81.3, KID 0.0412` — the run's headline numbers from its summary.json ('' if none)."""
    summary = read_json(run_dir / "summary.json") or {}
    parts = [
        fmt.format(summary[k])
        for k, fmt in _HEADLINES
        if isinstance(summary.get(k), int | float) and not isinstance(summary.get(k), bool)
    ]
    return f": {', '.join(parts[:2])}" if parts else ""


def _write_log(folder: Path, outcomes: list[Outcome]) -> None:
    """`<root>/<scale>/runner_last.json`: what the last invocation did with each run."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "run": o.run.name,
            "action": o.action,
            "state": o.state,
            "seconds": round(o.seconds, 1),
            "error": o.error,
        }
        for o in outcomes
    ]
    (folder / RUNNER_LAST_FILE).write_text(json.dumps(rows, indent=2) + "\n")
