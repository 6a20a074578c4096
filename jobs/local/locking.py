"""One writer at a time for the files under .local/, across terminals (a file lock).

Two `jobs register` for the same run must register it once, and two `deploy`s (or a `deploy`
and a `stop`) must not interleave their stops, starts and state writes. The lock is an OS-level
lock on a file (filelock uses fcntl.flock on Unix), so it is released when its holder exits,
even by `kill -9`: there is no stale lock to clear by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from jobs.errors import JobsError


@contextmanager
def exclusive(
    lock_file: Path, doing: str, say: Callable[[str], None] = print, timeout_s: float = 600.0
) -> Iterator[None]:
    """Hold `lock_file` for the block; wait (saying so) while another command holds it.

    `doing` completes "another `jobs` command is ...". Raises JobsError after `timeout_s`
    seconds of waiting.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(f"waiting: another `jobs` command is {doing}")
        try:
            lock.acquire(timeout=timeout_s)
        except Timeout:
            raise JobsError(
                f"another `jobs` command has been {doing} for more than {timeout_s:.0f} s (it holds "
                f"{lock_file}); let it finish or stop it, then run this command again"
            ) from None
    try:
        yield
    finally:
        lock.release()


def is_held(lock_file: Path) -> bool:
    """True while another process holds the lock (a read-only command mentions it, and does not wait)."""
    if not lock_file.exists():
        return False
    lock = FileLock(lock_file)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False
