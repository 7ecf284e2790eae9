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
