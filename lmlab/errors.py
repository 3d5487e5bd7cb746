"""The one exception type for bad input: its message is the single line a user sees."""


class LmlabError(Exception):
    """Bad input or a failed precondition. The message names the thing, the value and what was expected."""


class ConfigError(LmlabError):
    """A configuration key is unknown, of the wrong type, or out of range."""


class DataError(LmlabError):
    """A corpus, shard or manifest is missing, empty, truncated or corrupt."""


class FitError(LmlabError):
    """A scaling-law fit cannot be done: too few points, bad values, missing columns, unknown law."""
