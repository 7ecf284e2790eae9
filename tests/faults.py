"""Fault injection for the resume tests, kept out of the training loop.

`genda_killed_at(step, *overrides)` runs `python -m genda overrides...` in a child process that
SIGKILLs itself right after the loop writes checkpoints/last.ckpt at `step` (a power cut just
after a checkpoint; status.json then names that step). The child runs this file as a module,
`python -m tests.faults STEP overrides...`: it wraps `Trainer.save` and then runs genda's own
`__main__` as `python -m genda` would.
"""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
from pathlib import Path


def kill_after_checkpoint(step: int) -> None:
    """From now on in this process: SIGKILL right after `last.ckpt` of `step` is written."""
    from genda.train.loop import Trainer

    save = Trainer.save

    def save_then_die(self: Trainer, which: str = "last") -> Path:
        path = save(self, which)
        if which == "last" and self.step == step:
            os.kill(os.getpid(), signal.SIGKILL)
        return path

    Trainer.save = save_then_die


def genda_killed_at(step: int, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m genda args...` (see conftest.genda), killed right after the checkpoint at `step`."""
    from .conftest import ROOT, genda

    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return genda(str(step), *args, cwd=cwd, module="tests.faults", env={"PYTHONPATH": path})


if __name__ == "__main__":
    kill_after_checkpoint(int(sys.argv.pop(1)))
    runpy.run_module("genda", run_name="__main__", alter_sys=True)
