"""The errors the project can name, under one base class.

A command (`pipelines/`) turns any of them into one line, `error: <message>`, and exits with
the class's `exit_status`: 2 when the user gave a bad config value, argument or input file
(`InputError`), 1 when a run was started and failed (`RunFailed`). Every layer raises these, so
this module imports nothing and sits below all of them.
"""

from __future__ import annotations


class BackpropLabError(Exception):
    """Base of every error the project names; the message is meant for the user as is."""

    exit_status = 1


class InputError(BackpropLabError, ValueError):
    """A bad config value, argument or input file: nothing was run (exit status 2)."""

    exit_status = 2


class ConfigError(InputError):
    """A config value out of range; the message names the key and the allowed values."""


class DataError(InputError):
    """Bad data file or values; the message names the file, the column and the first bad row."""


class WeightsError(InputError):
    """A weights file that cannot be read or does not fit the network the config asks for."""


class NotFound(InputError, LookupError):
    """A run, sweep or experiment named on the command line does not exist."""


class RerunRefused(InputError):
    """The run cannot be rerun or evaluated faithfully (changed data, no logged config, ...)."""


class RegistryUnavailable(InputError):
    """`tracking.register` cannot work here (no model registry, a name MLflow refuses):
    found before training, so nothing was run."""


class RunFailed(BackpropLabError, RuntimeError):
    """A run started and failed (exit status 1); it is recorded in MLflow as FAILED."""

    exit_status = 1


class Diverged(RunFailed):
    """Training diverged; the run is recorded as FAILED with the epoch and last finite cost."""


class TrackingUnavailable(InputError):
    """The tracking store cannot be opened before a run starts: a server that cannot be reached
    or refuses the credentials, a store file that is not one (exit status 2)."""


class TrackingLost(RunFailed):
    """The tracking store stopped answering during a run and did not come back in time; the
    message says what was not recorded, or where the spooled writes wait (exit status 1)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during a run (Ctrl-C, `timeout`, `docker stop`, a SLURM time limit):
    the run is ended KILLED after saving what it has; the command exits 128 + the signal."""

    def __init__(self, signal_name: str = "SIGINT", signal_number: int = 2):
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name, self.exit_status = signal_name, 128 + signal_number


class RegistrationFailed(RunFailed):
    """The run (or sweep) finished and is kept, but its model could not be registered."""
