"""Near-duplicate signatures computed in a child process.

A crawl's interpreter is CPU-bound: the reactor thread parses pages while the
writer thread stores batches, under one GIL. Signing a batch of 100 posts
costs about 0.03 s of CPU; done in the writer thread it takes that time from
the reactor. ``SigningProcess`` hands the texts to ``python -m
finews.storage.signing`` over a pipe and waits (without the GIL) for the
signatures.

The child is a plain subprocess, not ``multiprocessing``: it never re-imports
the caller's main module, and it ends when its stdin closes, so a parent
killed with ``kill -9`` does not leave it behind. A child that dies, hangs
or answers nonsense is stopped and the batch (and every later one) is signed
in this process: slower, never lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, ClassVar

import numpy as np

from finews.core.minhash import NUM_PERM, signatures
from finews.core.retry import SIGNING

logger = logging.getLogger(__name__)

_HEADER = struct.Struct(">Q")
_ROOT = str(Path(__file__).resolve().parents[2])
# A batch that takes longer (finews.core.retry.SIGNING says why) means the
# child is stuck (stopped, swapped out), and this process can do it instead.
TIMEOUT = SIGNING.timeout
SECONDS_PER_MILLION_CHARACTERS = SIGNING.seconds_per_million_characters
_MAX_ANSWER = 1 << 30  # 1,000 signatures are about 1 MB


class SigningFailed(Exception):
    """The child did not answer with signatures."""


class SigningProcess:
    """A callable like ``finews.core.minhash.signatures`` that signs in a
    child process, started by ``start()`` or the first call. Thread-safe;
    ``close()`` ends the child. ``fallback`` says why this process signs
    instead, if it does."""

    command: ClassVar[Sequence[str]] = (sys.executable, "-m", __name__)

    def __init__(self, timeout: float = TIMEOUT):
        self.timeout = timeout
        self.fallback: str | None = None
        self.peak_rss_kib: int | None = None  # the child's, read at close (Linux)
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    def __call__(self, texts: list[str]) -> list[np.ndarray | None]:
        with self._lock:
            if self.fallback is None:
                try:
                    return self._ask(texts)
                except Exception as error:  # whatever went wrong there, this process can sign
                    self._fall_back("failed", error)
        return signatures(texts)

    def start(self) -> None:
        """Start the child now rather than at the first batch (it imports
        numpy and datasketch, about 0.3 s)."""
        with self._lock:
            if self._child is None and self.fallback is None:
                try:
                    self._start()
                except OSError as error:  # no process to be had (limits, memory): sign here
                    self._fall_back("did not start", error)

    def _fall_back(self, what: str, error: Exception) -> None:
        self.fallback = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        logger.warning("The near-duplicate signing process %s (%s); signing in the crawl's process from now on",
                       what, self.fallback)
        self._stop(kill=True)

    def _start(self) -> subprocess.Popen[bytes]:
        # The package's own folder first: the child imports this module
        # whatever the caller's working directory and sys.path.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (_ROOT, os.environ.get("PYTHONPATH")))))
        child = self._child = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                               env=env, close_fds=True)
        for stream in _pipes(child):
            os.set_blocking(stream.fileno(), False)  # every wait has a deadline
        return child

    def _ask(self, texts: list[str]) -> list[np.ndarray | None]:
        child = self._child if self._child is not None else self._start()
        requests, answers = _pipes(child)
        request = pickle.dumps(list(texts), protocol=pickle.HIGHEST_PROTOCOL)
        characters = sum(len(text) for text in texts)
        deadline = time.monotonic() + self.timeout + SECONDS_PER_MILLION_CHARACTERS * characters / 1e6
        _write(requests.fileno(), _HEADER.pack(len(request)) + request, deadline)
        answer = answers.fileno()
        size = _HEADER.unpack(_read(answer, _HEADER.size, deadline))[0]
        if size > _MAX_ANSWER:
            raise SigningFailed(f"announced an answer of {size} bytes")
        reply = pickle.loads(_read(answer, size, deadline))
        if not (isinstance(reply, list) and len(reply) == len(texts)
                and all(v is None or (isinstance(v, np.ndarray) and v.shape == (NUM_PERM,)) for v in reply)):
            raise SigningFailed(f"answered something else than {len(texts)} signatures")
        return reply

    def _stop(self, kill: bool = False) -> None:
        """End the child: it exits at the end of its input; one that failed
        (or has not exited in ``SIGNING.stop_wait`` s) is killed."""
        child, self._child = self._child, None
        if child is None:
            return
        if kill:
            child.kill()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            child.wait(timeout=SIGNING.stop_wait)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def close(self) -> None:
        with self._lock:
            self.peak_rss_kib = _peak_rss_kib(self.pid) or self.peak_rss_kib
            self._stop()

    def __enter__(self) -> SigningProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pipes(child: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    """The child's stdin and stdout: both are pipes (``subprocess.PIPE``)."""
    if child.stdin is None or child.stdout is None:
        raise SigningFailed("the signing process has no pipes")
    return child.stdin, child.stdout


def _peak_rss_kib(pid: int | None) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def _wait(fd: int, deadline: float, writing: bool = False) -> None:
    remaining = deadline - time.monotonic()
    wait = max(remaining, 0)
    ready = select.select([], [fd], [], wait) if writing else select.select([fd], [], [], wait)
    if not any(ready):
        raise SigningFailed("no answer in time")


def _write(fd: int, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        _wait(fd, deadline, writing=True)
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            continue


def _read(fd: int, size: int, deadline: float) -> bytes:
    """Exactly ``size`` bytes, or SigningFailed at end of stream or deadline."""
    chunks, wanted = [], size
    while wanted:
        _wait(fd, deadline)
        try:
            chunk = os.read(fd, min(wanted, 1 << 20))
        except BlockingIOError:
            continue
        if not chunk:
            raise SigningFailed("the process ended")
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)


def _serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer each pickled list of texts with their signatures until the
    parent closes the pipe."""
    while len(header := requests.read(_HEADER.size)) == _HEADER.size:
        size = _HEADER.unpack(header)[0]
        request = requests.read(size)
        if len(request) < size:
            return  # the parent died mid-request
        texts = pickle.loads(request)
        reply = pickle.dumps(signatures(texts), protocol=pickle.HIGHEST_PROTOCOL)
        replies.write(_HEADER.pack(len(reply)) + reply)
        replies.flush()


if __name__ == "__main__":
    # Ctrl-C in a terminal reaches the whole process group; the crawl stops
    # gracefully and still needs signatures for its last batches.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Answers go to the pipe the parent reads; anything a library prints
    # goes to stderr instead of into an answer.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with contextlib.suppress(BrokenPipeError):
        _serve(sys.stdin.buffer, answers)
