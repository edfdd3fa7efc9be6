"""One trainer per run folder: an exclusive lock on RUN/.lock while a run is built and trained.

The lock is an flock on an open file, so the kernel drops it when its process ends, however it
ends: a lock left by a killed trainer is no obstacle (the next trainer simply takes it). The
file holds the holder's PID, host and start time, for the message a second trainer gets.
Where flock does not exist (Windows), runs are not locked.
"""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path

from ..errors import GankitError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_FILE = ".lock"


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.file = None

    def acquire(self) -> "RunLock":
        if fcntl is None:
            return self
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise GankitError(f"run folder {self.path.parent} is being trained by {holder}: wait for it to "
                              "finish or stop it (a lock of a process that has died is taken over by itself)") from None
        handle.seek(0)
        handle.truncate()
        started = datetime.datetime.now().isoformat(timespec="seconds")
        handle.write(f"process {os.getpid()} on {socket.gethostname()} since {started}\n")
        handle.flush()
        self.file = handle
        return self

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing the file drops the flock
            self.file = None

    def __del__(self):
        self.release()
