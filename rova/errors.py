"""Exceptions meant for people: each says what was wrong, where, and what to do."""


class RovaError(Exception):
    """Base class for errors that the launcher reports as one line, without a traceback."""


class ConfigError(RovaError):
    """A config value is wrong. The message starts with the dotted key, e.g. `reward.kl_alpha: ...`."""

    def __init__(self, key: str, problem: str | None = None):
        # OmegaConf re-raises errors from dataclass __post_init__ as type(error)(message); accept that form.
        if problem is None:
            key, problem = "config", key
        self.key = key
        self.problem = problem
        super().__init__(f"{key}: {problem}")


class DataError(RovaError):
    """An annotation file or record is malformed (the message names the file and record index)."""


class VideoDecodeError(RovaError):
    """A video file is missing or cannot be decoded; callers skip and count it, never replace it."""


class CheckpointError(RovaError):
    """A checkpoint cannot be restored as saved (the message names the checkpoint and what does not fit)."""


class DiskFullError(RovaError):
    """The device is full (ENOSPC): the message names the path, and the last complete checkpoint to resume from."""


def exit_status(exc: RovaError) -> int:
    """What a command-line entry point prints and returns for an error: one line on stderr; 2 for a config
    error (the key is named), 1 for any other rova error."""
    import sys

    if isinstance(exc, ConfigError):
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(f"error: {exc}", file=sys.stderr)
    return 1
