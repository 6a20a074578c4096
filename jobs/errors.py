"""The one error type the command line turns into a message and a non-zero exit."""


class JobsError(Exception):
    """A problem the user can fix; the message says what is wrong and the command that fixes it."""

    exit_code = 2


class Interrupted(JobsError):
    """Ctrl-C: the message says what is still running in Azure and how to stop or resume it."""

    exit_code = 130
