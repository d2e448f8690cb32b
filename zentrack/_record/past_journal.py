"""A record the journal cannot take goes straight to the store, or its call raises.

A tracked call that returns has its record on disk.  When the journal
cannot be written (a full disk, a folder made read-only), the line is
written to the store at once, under the writer lock: one MLMD write per
call until the journal works again (each call tries the journal first).  If
the store cannot take it either, the call raises :class:`StoreError` rather
than return with its record only in memory, lost if the process ends.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from zentrack._record.drain import writer_lock
from zentrack._store.location import Location
from zentrack._store.mlmd import MetadataStore
from zentrack.exceptions import StoreError

log = logging.getLogger("zentrack")

#: Seconds during which calls that cannot journal raise at once after the store
#: refused such a record, instead of each waiting on a store that is failing.
STORE_RETRY_PAUSE: Final = 1.0


class PastJournal:
    """Writes records straight to the store of ``location`` while its journal fails."""

    def __init__(self, location: Location) -> None:
        self.location = location
        #: When the store last refused such a record: (retry after, why).
        self._refused: tuple[float, Exception] | None = None
        self._warned = False

    def write(
        self, journal_error: OSError, data: bytes, store: MetadataStore, lock: threading.Lock
    ) -> None:
        """Write one journal line to the store now; ``lock`` serialises the store's users.

        Raises:
            StoreError: the store cannot take it either (or refused one less
                than :data:`STORE_RETRY_PAUSE` seconds ago): the call is not
                recorded, and says so.
        """
        where = str(self.location.journal_dir)
        refused = self._refused
        if refused is not None and time.monotonic() < refused[0]:
            cause: Exception = refused[1]  # failed a moment ago: do not wait on it again
        else:
            try:
                assert self.location.lock_path is not None
                with lock, writer_lock(self.location.lock_path):
                    store.write([data], kept=None)
                self._refused = None
            except (StoreError, OSError) as failed:
                cause = failed
                self._refused = (time.monotonic() + STORE_RETRY_PAUSE, failed)
        if self._refused is not None:
            raise StoreError(
                f"This call's record cannot be kept: the journal folder {where!r} cannot be "
                f"written ({journal_error.strerror or journal_error}) and the store cannot take "
                f"the record either ({cause}). The call ran, but it is not recorded anywhere; "
                "free disk space or make the folder writable."
            ) from None
        if not self._warned:
            self._warned = True
            log.warning(
                "zentrack: cannot write the journal in %r (%s); until it can be written, each "
                "record of this process goes straight to the store %r (slower; a call raises "
                "if the store cannot take it). Free disk space or fix the folder's permissions.",
                where,
                journal_error.strerror or journal_error,
                self.location.display,
            )
