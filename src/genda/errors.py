"""Errors that end a command with one clear line (no traceback)."""


class GendaError(Exception):
    """Base: the message names the file or config key and says what to do."""


class ConfigError(GendaError):
    pass


class DataError(GendaError):
    pass


class CheckpointError(GendaError):
    pass


class NonFiniteLossError(GendaError):
    pass


class Interrupted(Exception):
    """A run stopped by SIGTERM/SIGINT after writing its checkpoint and status.json.

    Not a GendaError: the command exits 128 + signum (130 SIGINT, 143 SIGTERM), not 2."""

    def __init__(self, signum: int, run_dir: str, step: int) -> None:
        import signal

        self.signum, self.run_dir, self.step = int(signum), str(run_dir), int(step)
        super().__init__(f"{signal.Signals(self.signum).name}: checkpoint saved to {self.run_dir}/checkpoints/last.ckpt "
                         f"at step {self.step}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
