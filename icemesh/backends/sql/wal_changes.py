"""Whether a SQLite database has seen a commit, read from its WAL index without a query.

A kept loadTable's largest cost was its one-row pointer select (about 7 us in process, twice that under
load: benchmarks/catalog.py), and `PRAGMA data_version` costs nearly as much, since the statement machinery is
what is slow. SQLite itself decides whether a reader's snapshot is current from the WAL index header, the
first bytes of the `-shm` file every connection maps (https://www.sqlite.org/walformat.html, "The WAL-Index
Header"): two copies of a 48-byte header holding the commit counter (iChange), the last valid frame (mxFrame),
the salts and checksums, written copy 2 then copy 1 by every commit. Reading both copies and finding them
equal is how a reader knows it read a whole header; any commit changes it. So the pointers a thread read stay
good while the header is the same bytes.

The map is read only while a connection of ours has the database open: SQLite deletes or truncates the
`-shm` file only when the last connection closes or the first one opens, and ours is neither while it is
open. The file descriptor behind the map is never closed: POSIX drops every lock a process holds on a file
when it closes any descriptor of that file, and SQLite's own locks on the `-shm` file (the one that stops
another process from truncating it, the readers' marks) are this process's. So there is one map per file
per process, kept while the file lives (`refresh` maps a new one after SQLite replaced it). Anything unexpected (no file, a header not yet written, two copies
that differ mid-commit) answers None: look it up the slow way.
"""

from __future__ import annotations

import mmap
import os
import threading

HEADER_BYTES = 48
_INITIALISED = 12  # offset of isInit in each copy


class WalChanges:
    def __init__(self, database_path: str) -> None:
        self._path = database_path + "-shm"

    def header(self) -> bytes | None:
        """The current WAL index header, or None when it cannot be read whole."""
        found = _MAPS.get(self._path)
        mapped = found[2] if found is not None and found[2] is not None else _map(self._path)
        if mapped is None:
            return None
        both = mapped[:2 * HEADER_BYTES]
        first = both[:HEADER_BYTES]
        if first != both[HEADER_BYTES:] or not first[_INITIALISED]:
            return None
        return first

    def refresh(self) -> None:
        """After opening a connection: if the `-shm` file is a new one (every connection of this process had
        closed and SQLite deleted the old file), map the new one. The old file's descriptor may be closed then:
        it names a deleted file, on which nobody holds a lock."""
        with _MAPS_LOCK:
            found = _MAPS.get(self._path)
            if found is None:
                return
            try:
                current = os.stat(self._path).st_ino
            except OSError:
                current = None
            if current != found[1]:
                del _MAPS[self._path]
                if found[2] is not None:
                    found[2].close()
                os.close(found[0])


# path -> (descriptor, inode, map or None while the file is too short): one per file per process
_MAPS: dict[str, tuple[int, int, mmap.mmap | None]] = {}
_MAPS_LOCK = threading.Lock()


def _map(path: str) -> mmap.mmap | None:
    """The process's map of `path`; its descriptor is never closed while it names the live file (see the
    module's docstring)."""
    with _MAPS_LOCK:
        found = _MAPS.get(path)
        if found is None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return None
            found = _MAPS[path] = (fd, os.fstat(fd).st_ino, None)
        if found[2] is not None:
            return found[2]
        fd = found[0]
        try:
            if os.fstat(fd).st_size < 2 * HEADER_BYTES:
                return None
            mapped = mmap.mmap(fd, 2 * HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ)
        except (OSError, ValueError):
            return None
        _MAPS[path] = (fd, found[1], mapped)
        return mapped
