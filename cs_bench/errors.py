"""User-facing errors.

Every problem a user can cause (bad name, bad ratio, missing data, unreadable file ...)
is raised as :class:`CSBenchError`. The CLI prints its message as one line and exits
non-zero; ``--debug`` shows the traceback.
"""

import difflib


class CSBenchError(Exception):
    """An error caused by the user's input or environment, reported as one line."""

    exit_code = 2


class DataError(CSBenchError):
    """Missing, unreadable or tampered data."""

    exit_code = 3


class WeightsError(CSBenchError):
    """Missing, tampered or mismatched weights."""

    exit_code = 4


def unknown_name(kind, name, valid):
    """Build the error for an unknown name, listing the valid names and the closest match.

    >>> str(unknown_name("method", "ista-wavlet", ["ista-wavelet", "tval3"]))
    "unknown method 'ista-wavlet' (did you mean 'ista-wavelet'?); valid: ista-wavelet, tval3"
    """
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return CSBenchError(f"unknown {kind} '{name}'{hint}; valid: {', '.join(valid)}")
