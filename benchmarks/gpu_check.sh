#!/usr/bin/env bash
# The one script a GPU session runs (BENCHMARKS.md, "GPU"): on the device machine, from the repo root,
#   bash benchmarks/gpu_check.sh          (device tool: timeout_s=600; the script keeps under ~9 min)
# It writes everything to $OUT/gpu_results/ ($OUT: the folder the device tool brings back;
# outputs/gpu when unset), at most 8 files, each step under `timeout`, the whole under a budget:
#   nvidia-smi.txt    nvidia-smi, then its one-line query of the GPU
#   setup.log         which python, `make install` (when .venv is missing), the import probe
#   pytest.log/.xml   pytest -q -m gpu tests/test_gpu.py (GPU smoke of every experiment, AMP,
#                     compile, DDP + kill/resume, determinism), with a timeout
#   run_seconds.json  seconds of each run tests/test_gpu.py started (GENDA_GPU_RUN_TIMES)
#   bench.log         stderr tails of the timed runs
#   results.json      all of it in one file, rewritten after every step: env, pytest summary,
#                     per experiment at scale=full: steps/s and images/s of a short timed run
# The timed runs: `python -m genda experiment=NAME scale=full trainer.max_steps=30
# trainer.log_every=5` with W&B off and trainer.val_every / sample_every / checkpoint_every = 0 (no
# validation, sampling or checkpoint inside the timed steps). The loop logs `train/images_per_s` and a
# `time` per log row (src/genda/train/loop.py, logging.py): steps/s and images/s are taken over the
# rows after the first (the first window holds CUDA warm-up and cudnn autotuning). Once the row of
# the last step is there the run is stopped: its end-of-run evaluation (FID on 1,000 images, ...)
# is not what is timed. Experiments run one at a time (the timings share nothing), the most
# representative first, until the budget is spent; the rest are listed as skipped.
#
# ENVIRONMENT. The device copies the working tree but not .venv (git-ignored, and far over the 64 MiB
# a call carries), so `make install` must have built the venv there first: the script runs it when
# .venv/.installed is missing. The device machine reaches no package registry, though, so there
# `make install` fails (quickly: pip is told not to retry) and the script falls back to the image's
# python3 (PyTorch, Lightning, SciPy, scikit-learn/-image, matplotlib are in it) with src/ on
# PYTHONPATH, plus wheels carried in .whl/ (device README: hydra-core, omegaconf,
# antlr4-python3-runtime, wandb, pytorch-fid, torchinfo, ...) installed into /tmp/site, and then
# `python -m genda.data build` for the embedded data (in $GENDA_CACHE, default ~/.cache/genda; that
# cache is ~1 GiB here, too big to carry whole). GENDA_PY=/path/to/python skips all of that.
# If the probe (import genda, hydra, lightning_fabric; CUDA visible) fails, results.json says why and
# the tests and timings are skipped: a failed setup costs seconds, not the lease.
#
# Knobs (environment): GPU_CHECK_BUDGET (s, default 500), GPU_CHECK_PYTEST_TIMEOUT (270),
# GPU_CHECK_INSTALL_TIMEOUT (200), GPU_CHECK_DATA_TIMEOUT (150), GPU_CHECK_RUN_TIMEOUT (120 per timed
# run), GPU_CHECK_STEPS (30), GPU_CHECK_LOG_EVERY (5), GPU_CHECK_EXPERIMENTS ("a b c": these, in this
# order), GPU_CHECK_OVERRIDES (extra overrides for the timed runs, e.g. trainer.precision=bf16-mixed),
# GPU_CHECK_SKIP_PYTEST=1, GPU_CHECK_ACCELERATOR (gpu; cpu only to try the script without a GPU),
# GENDA_GPU_JOBS (parallel runs in tests/test_gpu.py, default 8).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-500}
DEADLINE=$((START + BUDGET))
OUT=${OUT:-$ROOT/outputs/gpu}
RES=$OUT/gpu_results
WORK=$(mktemp -d /tmp/gpu_check.XXXXXX)
mkdir -p "$RES"
export WANDB_MODE=disabled WANDB_SILENT=true PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export GPU_CHECK_RES=$RES GPU_CHECK_WORK=$WORK GPU_CHECK_DEADLINE=$DEADLINE GPU_CHECK_START=$START
left() { echo $((DEADLINE - $(date +%s))); }
say() { echo "[gpu_check $(( $(date +%s) - START ))s] $*" | tee -a "$RES/setup.log" >&2; }
: >"$RES/setup.log"

# -- the helper (stdlib only, any python3; the timed runs use $PY) ---------------------------------
cat >"$WORK/helper.py" <<'PYEOF'
"""gpu_check.sh's helper: `probe` (as $PY), `bench` (timed runs) and `assemble` (results.json)."""
import json, os, signal, subprocess, sys, time, xml.etree.ElementTree as ET
from pathlib import Path

RES, WORK = Path(os.environ["GPU_CHECK_RES"]), Path(os.environ["GPU_CHECK_WORK"])
DEADLINE, START = float(os.environ["GPU_CHECK_DEADLINE"]), float(os.environ["GPU_CHECK_START"])
FIRST = ["dcgan_a", "ddpm_digits", "dann_mnist_mnistm", "dcgan_b", "sngan", "wgan", "wgan_gp",
         "vae_faces", "ddim_faces", "adda_mnist_mnistm", "dsn_mnist_mnistm", "mcc_mnist_mnistm",
         "classifier_mnist"]  # one of each kind first; the other UDA pairs differ only in data


def _read(name, default=None):
    try:
        return json.loads((WORK / name).read_text())
    except (OSError, ValueError):
        return default


def probe():
    """Run by $PY: the versions, the GPU, and whether genda's imports work (exit 1 if not)."""
    info = {"python": sys.executable, "version": sys.version.split()[0]}
    try:
        import torch
        info.update(torch=torch.__version__, cuda=torch.version.cuda, cuda_available=torch.cuda.is_available())
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}",
                        bf16=torch.cuda.is_bf16_supported(), cudnn=torch.backends.cudnn.version())
        import hydra, lightning_fabric, omegaconf  # noqa: F401
        import genda, genda.train.loop  # noqa: F401
        info.update(hydra=hydra.__version__, omegaconf=omegaconf.__version__, lightning_fabric=lightning_fabric.__version__,
                    genda=genda.__file__)
        info["ok"] = True
        if os.environ.get("GPU_CHECK_ACCELERATOR", "gpu") in ("gpu", "cuda") and not torch.cuda.is_available():
            info.update(ok=False, error="torch.cuda.is_available() is False: no CUDA GPU visible to this python")
    except Exception as e:  # a missing package: said in results.json
        info.update(ok=False, error=f"{type(e).__name__}: {e}")
    (WORK / "env.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info))
    sys.exit(0 if info["ok"] else 1)


def _experiments():
    if os.environ.get("GPU_CHECK_EXPERIMENTS", "").strip():
        return os.environ["GPU_CHECK_EXPERIMENTS"].split()
    names = sorted(p.stem for p in Path("conf/experiment").glob("*.yaml"))
    return [e for e in FIRST if e in names] + [e for e in names if e not in FIRST]


def _rows(run):
    try:
        text = (run / "metrics.jsonl").read_text()
    except OSError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line being written
            pass
    return [r for r in rows if "train/images_per_s" in r]


def _gpu_memory_mib():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
        return int(out.split()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None


def _timed(exp, py, steps, log_every, extra, limit):
    run = WORK / "bench" / exp
    cmd = [py, "-m", "genda", f"experiment={exp}", "scale=full", "logger.mode=disabled", "trainer.progress=false",
           f"trainer.accelerator={os.environ.get('GPU_CHECK_ACCELERATOR', 'gpu')}", f"trainer.max_steps={steps}",
           f"trainer.log_every={log_every}", "trainer.val_every=0", "trainer.sample_every=0",
           "trainer.checkpoint_every=0", f"hydra.run.dir={run}", *extra]
    err = WORK / f"{exp}.stderr"
    t0 = time.time()
    with open(err, "w") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=f, start_new_session=True)
    rec, first_seen, mem = {"experiment": exp, "overrides": cmd[4:]}, None, None
    while True:
        rows = _rows(run)
        if rows and first_seen is None:
            first_seen = time.time() - t0
        if rows and rows[-1]["step"] >= steps:
            mem = _gpu_memory_mib()
            rec["state"] = "timed"
            break
        if proc.poll() is not None:
            rec["state"] = f"exited {proc.returncode} before step {steps}"
            break
        if time.time() - t0 > limit:
            rec["state"] = f"timeout after {limit:.0f} s"
            break
        time.sleep(0.2)
    if proc.poll() is None:  # past the timed steps: the end-of-run evaluation is not timed
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
    rec["wall_s"] = round(time.time() - t0, 1)
    rows = _rows(run)
    if first_seen is not None:
        rec["first_log_row_s"] = round(first_seen, 1)  # start-up + the first log_every steps
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        span = b["time"] - a["time"]
        if span > 0:
            rec["steps_per_s"] = round((b["step"] - a["step"]) / span, 3)
            # images/s over the same window: each row's rate weighted by its window's length
            images = sum(r["train/images_per_s"] * (r["time"] - p["time"]) for p, r in zip(rows, rows[1:]))
            rec["images_per_s"] = round(images / span, 1)
            rec["images_per_step"] = round(rec["images_per_s"] / rec["steps_per_s"], 1)
            rec["timed_steps"] = b["step"] - a["step"]
        rec["first_window_images_per_s"] = round(rows[0]["train/images_per_s"], 1)  # warm-up included
    if mem is not None:
        rec["gpu_memory_used_mib"] = mem
    tail = err.read_text(errors="replace")[-1500:] if err.exists() else ""
    if rec["state"] != "timed":
        rec["stderr_tail"] = tail
    with open(RES / "bench.log", "a") as f:
        f.write(f"==== {exp}: {rec['state']} ({rec['wall_s']} s)\n{tail}\n")
    return rec


def bench(py):
    steps = int(os.environ.get("GPU_CHECK_STEPS", "30"))
    log_every = int(os.environ.get("GPU_CHECK_LOG_EVERY", "5"))
    per_run = float(os.environ.get("GPU_CHECK_RUN_TIMEOUT", "120"))
    extra = os.environ.get("GPU_CHECK_OVERRIDES", "").split()
    out = {"steps": steps, "log_every": log_every, "overrides": extra, "runs": [], "skipped": []}
    for exp in _experiments():
        left = DEADLINE - time.time()
        if left < 45:
            out["skipped"].append(exp)
            continue
        out["runs"].append(_timed(exp, py, steps, log_every, extra, min(per_run, left - 25)))
        (WORK / "bench.json").write_text(json.dumps(out, indent=1))
        assemble()
    (WORK / "bench.json").write_text(json.dumps(out, indent=1))


def _pytest():
    xml = RES / "pytest.xml"
    if not xml.exists():
        return None
    try:
        root = ET.parse(xml).getroot()
    except ET.ParseError:
        return {"error": "pytest.xml unreadable (pytest killed by its timeout?)"}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    s = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    s["time_s"] = float(suite.get("time", 0))
    s["failed"] = []
    for case in suite.iter("testcase"):
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            s["failed"].append({"test": case.get("name"), "message": (bad.get("message") or "")[:500]})
    return s


def assemble():
    doc = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "elapsed_s": round(time.time() - START),
           "budget_s": round(DEADLINE - START), "env": _read("env.json"), "steps": _read("steps.json", {}),
           "pytest": _pytest(), "run_seconds": None, "bench": _read("bench.json")}
    try:
        doc["run_seconds"] = json.loads((RES / "run_seconds.json").read_text())
    except (OSError, ValueError):
        pass
    (RES / "results.json").write_text(json.dumps(doc, indent=1) + "\n")


def step(name, status):
    """Record one shell step's outcome (exit status or 'skipped: why') in steps.json."""
    steps = _read("steps.json", {})
    steps[name] = status
    (WORK / "steps.json").write_text(json.dumps(steps, indent=1))
    assemble()


if __name__ == "__main__":
    {"probe": lambda: probe(), "bench": lambda: bench(sys.argv[2]), "assemble": assemble,
     "step": lambda: step(sys.argv[2], sys.argv[3])}[sys.argv[1]]()
PYEOF
HELPER="python3 $WORK/helper.py"
command -v python3 >/dev/null 2>&1 || HELPER="$ROOT/.venv/bin/python $WORK/helper.py"
record() { $HELPER step "$1" "$2" >/dev/null 2>&1 || true; }

# -- 1. the GPU --------------------------------------------------------------------------------------
{ timeout 30 nvidia-smi; echo; timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm --format=csv; } \
  >"$RES/nvidia-smi.txt" 2>&1
record nvidia-smi "exit $?"

# -- 2. the python ----------------------------------------------------------------------------------
if [ -n "${GENDA_PY:-}" ]; then
  PY=$GENDA_PY
  say "python: GENDA_PY=$PY"
elif [ -f .venv/.installed ] && [ -x .venv/bin/python ]; then
  PY=$ROOT/.venv/bin/python
  say "python: $PY (make install done)"
else
  say "no .venv/.installed: make install (timeout ${GPU_CHECK_INSTALL_TIMEOUT:-200} s)"
  PIP_DEFAULT_TIMEOUT=5 PIP_RETRIES=0 timeout "${GPU_CHECK_INSTALL_TIMEOUT:-200}" make install >>"$RES/setup.log" 2>&1
  rc=$?
  record make-install "exit $rc"
  if [ $rc = 0 ] && [ -f .venv/.installed ]; then
    PY=$ROOT/.venv/bin/python
  else
    # offline device: the image's python3 + src/ + carried wheels (.whl/), then the embedded data
    PY=$(command -v python3)
    say "make install failed (exit $rc; the device reaches no registry): falling back to $PY + src/"
    export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
    if compgen -G ".whl/*.whl" >/dev/null; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        >>"$RES/setup.log" 2>&1 && export PYTHONPATH=$PYTHONPATH:/tmp/site
      record wheels "exit $?"
    fi
    if "$PY" -c "import genda.data" >/dev/null 2>&1; then
      timeout "${GPU_CHECK_DATA_TIMEOUT:-150}" "$PY" -m genda.data build >>"$RES/setup.log" 2>&1
      record data-build "exit $?"
    fi
  fi
fi
export GPU_CHECK_PY=$PY
timeout 120 "$PY" "$WORK/helper.py" probe >>"$RES/setup.log" 2>&1
PROBE=$?
record probe "exit $PROBE"
if [ $PROBE != 0 ]; then
  say "the probe failed (setup.log, results.json env): no tests, no timings"
  record pytest "skipped: probe failed"
  record bench "skipped: probe failed"
  $HELPER assemble
  rm -rf "$WORK"
  exit 1
fi

# -- 3. the GPU tests -------------------------------------------------------------------------------
RC=0
T=$(( $(left) - 90 )); [ "$T" -gt "${GPU_CHECK_PYTEST_TIMEOUT:-270}" ] && T=${GPU_CHECK_PYTEST_TIMEOUT:-270}
if [ "${GPU_CHECK_SKIP_PYTEST:-0}" = 1 ]; then
  record pytest "skipped: GPU_CHECK_SKIP_PYTEST=1"
elif [ "$T" -lt 60 ]; then
  record pytest "skipped: budget ($(left) s left)"
else
  say "pytest -m gpu tests/test_gpu.py (timeout $T s)"
  GENDA_GPU_RUN_TIMES=$RES/run_seconds.json timeout -k 15 "$T" "$PY" -m pytest -q -m gpu tests/test_gpu.py \
    -p no:cacheprovider --junitxml="$RES/pytest.xml" >"$RES/pytest.log" 2>&1
  rc=$?
  [ $rc = 124 ] && echo "gpu_check: pytest stopped by its $T s timeout" >>"$RES/pytest.log"
  record pytest "exit $rc"
  [ $rc != 0 ] && RC=1
  say "pytest: exit $rc ($(tail -n 1 "$RES/pytest.log"))"
fi

# -- 4. the timed runs at scale=full ----------------------------------------------------------------
say "timed runs at scale=full ($(left) s left)"
: >"$RES/bench.log"
"$PY" "$WORK/helper.py" bench "$PY" >>"$RES/setup.log" 2>&1
record bench "exit $?"
$HELPER assemble
say "done in $(( $(date +%s) - START )) s: $RES/results.json"
rm -rf "$WORK"
exit $RC
