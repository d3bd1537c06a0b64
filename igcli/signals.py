"""Signals that wait for a safe point: a SIGINT or SIGTERM never interrupts a write half-way.

Outside a :func:`deferred` section a signal acts as usual (the CLI turns SIGINT and SIGTERM into
:class:`Interrupted`, a KeyboardInterrupt, so a computation is abandoned at once and the job saves what it has). Inside one, the signal is only recorded;
when the outermost section ends, it is delivered to the handler that was in place before, exactly once. HDF5
writes, renames and index builds run inside such sections, so a SLURM ``--signal=TERM@120`` or a Ctrl-C at
any moment leaves every file either whole or still hidden.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM (``signum``) received: caught wherever KeyboardInterrupt is, so work is saved alike.

    A subclass, never KeyboardInterrupt itself, because CPython matches that exact type: when a KeyboardInterrupt
    leaves code run from a string (``exec``/``eval`` of text, as dataclasses and namedtuple build their methods
    during imports), it notes an unhandled interrupt, and ``python -m igcli`` then ends by SIGINT (status 130,
    or -2 to ``subprocess``) whatever exit code igcli chose, even after catching it: 143 became 130.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _Received:
    signum: int | None = None


def note_received(signum: int | None) -> None:
    """Record the termination signal a handler turned into :class:`Interrupted` (None clears it)."""
    _Received.signum = signum


def raise_if_received() -> None:
    """Raise :class:`Interrupted` again when a signal was received but its exception was lost: Python prints
    and drops an exception raised in a weakref callback or ``__del__``, so a handler that ran there would let
    the run go on to the end. Long loops call this between steps; it costs an attribute read."""
    if _Received.signum is not None:
        raise Interrupted(_Received.signum)


class _State:
    depth = 0
    pending: list[int] = []
    previous: dict[int, Any] = {}


def _record(signum: int, frame: Any) -> None:
    if signum not in _State.pending:
        _State.pending.append(signum)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Defer SIGINT and SIGTERM until the block (and every enclosing one) has finished.

    A no-op outside the main thread, where Python delivers no signals anyway. When the block raises, a deferred
    signal is dropped: the exception already ends what the signal would have ended.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _State.depth == 0:
        _State.pending = []
        _State.previous = {signum: signal.signal(signum, _record) for signum in SIGNALS}
    _State.depth += 1
    failed: BaseException | None = None
    try:
        yield
    except BaseException as error:
        failed = error
        raise
    finally:
        _State.depth -= 1
        if _State.depth == 0:
            for signum, handler in _State.previous.items():
                signal.signal(signum, handler)
            pending, _State.pending = _State.pending, []
            if failed is None:
                for signum in pending:
                    _deliver(signum, _State.previous[signum])


def _deliver(signum: int, handler: Any) -> None:
    """Act on ``signum`` as ``handler`` (what was installed before the section) would have."""
    if handler is signal.SIG_IGN:
        return
    if callable(handler):
        handler(signum, None)
    elif signum == signal.SIGINT:
        raise KeyboardInterrupt
    else:  # SIG_DFL for SIGTERM: terminate, now that the files are consistent
        os.kill(os.getpid(), signum)
