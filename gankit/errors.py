"""The one exception type that reaches users.

Anything a user can cause (a missing folder, a bad option, a damaged checkpoint) raises
`GankitError` with a message that says what is wrong *and what to do*. The command line prints
it as a single line without a traceback. Internal invariants use plain `assert`.
"""


class GankitError(Exception):
    """A problem with the user's input, explained in one line."""


class DesignWarning(UserWarning):
    """A configuration that trains but is known to train badly (e.g. a generator starting from a
    map below 4x4). Said when a model is built to train; not when a trained one is loaded to use."""
