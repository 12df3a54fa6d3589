"""Whether a process still exists: how stale leases, spool files and
embedded-server state files left by a killed process are recognised."""

import os


def alive(pid: int | None) -> bool:
    """True while ``pid`` runs. A zombie (exited, not yet reaped) is dead:
    an orphan's zombie stays until its new parent reaps it, and in a
    container whose first process never reaps that is forever."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read()
    except OSError:
        return False  # no /proc (not Linux): kill(0) has answered
    # The state follows the command name, which is in parentheses and may hold any byte.
    return fields[fields.rfind(b")") + 2:][:1] == b"Z"
