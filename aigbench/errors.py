"""Errors caused by the user's input (files, flags, models). Scripts print them without a traceback."""


class AigbenchError(Exception):
    """Base class: the message names the file, key or flag at fault and says what to do."""


class ConfigError(AigbenchError, ValueError):
    """A flag or setting has a value that cannot work."""
