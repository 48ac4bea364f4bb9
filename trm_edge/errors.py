"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class TRMEdgeError(Exception):
    """Bad input: the message names the problem and the fix."""


class ConfigError(TRMEdgeError):
    pass


class CheckpointError(TRMEdgeError):
    pass


class PuzzleError(TRMEdgeError):
    pass
