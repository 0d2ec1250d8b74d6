"""Whether a SQLite database has seen a commit, read from its WAL index without a query.

A kept loadTable's largest cost was its one-row pointer select (about 7 us in process, twice that under
load: benchmarks/catalog.py), and `PRAGMA data_version` costs nearly as much, since the statement machinery is
what is slow. SQLite itself decides whether a reader's snapshot is current from the WAL index header, the
first bytes of the `-shm` file every connection maps (https://www.sqlite.org/walformat.html, "The WAL-Index
Header"): two copies of a 48-byte header holding the commit counter (iChange), the last valid frame (mxFrame),
the salts and checksums, written copy 2 then copy 1 by every commit. Reading both copies and finding them
equal is how a reader knows it read a whole header; any commit changes it. So the pointers a thread read stay
good while the header is the same bytes.

The map is made only while a connection of ours has the database open: SQLite deletes or truncates the
`-shm` file only when the last connection closes or the first one opens, and ours is neither while it is
open. Whoever holds a `WalChanges` drops it with that connection. Anything unexpected (no file, a header not
yet written, two copies that differ mid-commit) answers None: look it up the slow way.
"""

from __future__ import annotations

import mmap
import os

HEADER_BYTES = 48
_INITIALISED = 12  # offset of isInit in each copy


class WalChanges:
    def __init__(self, database_path: str) -> None:
        self._path = database_path + "-shm"
        self._map: mmap.mmap | None = None

    def header(self) -> bytes | None:
        """The current WAL index header, or None when it cannot be read whole."""
        mapped = self._map or self._open()
        if mapped is None:
            return None
        try:
            both = mapped[:2 * HEADER_BYTES]
        except ValueError:  # closed by another thread meanwhile
            return None
        first = both[:HEADER_BYTES]
        if first != both[HEADER_BYTES:] or not first[_INITIALISED]:
            return None
        return first

    def _open(self) -> mmap.mmap | None:
        try:
            fd = os.open(self._path, os.O_RDONLY)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < 2 * HEADER_BYTES:
                return None
            self._map = mmap.mmap(fd, 2 * HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ)
            return self._map
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)

    def close(self) -> None:
        mapped, self._map = self._map, None
        if mapped is not None:
            mapped.close()
