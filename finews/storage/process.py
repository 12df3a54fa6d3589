"""Whether a process still exists: how stale leases, spool files and
embedded-server state files left by a killed process are recognised."""

import os


def alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
