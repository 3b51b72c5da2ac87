"""User-facing errors: each carries one line that names the problem and the fix.

The CLI prints the message of any `VaegenError` on stderr and exits non-zero without a traceback;
anything else escaping is a bug in vaegen, not a user error.
"""


class VaegenError(Exception):
    """A problem the user can fix; str(error) is the whole message."""

    exit_code = 1
    prefix = "error: "


class ConfigError(VaegenError):
    """A preset or --set override names an unknown key or holds a bad value."""


class CorpusError(VaegenError):
    """The corpus file is missing, unreadable, empty or not UTF-8 text."""


class CheckpointError(VaegenError):
    """The checkpoint is missing, not vaegen's, damaged, or of an unknown version."""


class TrainingError(VaegenError):
    """Training cannot go on (a non-finite loss) or cannot be resumed as asked."""


class Interrupted(VaegenError):
    """Ctrl-C or SIGTERM stopped the work: training after writing a resumable checkpoint, a server while it loads."""

    exit_code = 130  # the shell's code for a process stopped by SIGINT
    prefix = ""
