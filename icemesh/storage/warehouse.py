"""A warehouse: the root every table location must stay under, and the FileIO that reaches it.

Local warehouses are `file:///abs/path` roots; S3 warehouses are `s3://bucket/prefix` roots with
endpoint settings (`s3.endpoint`, `s3.region`, keys), which also let moto stand in for AWS in tests.
"""

from __future__ import annotations

import functools

import gzip
import io
import os
import posixpath
import shutil
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from pyiceberg.io import FileIO, load_file_io

from icemesh.names import Namespace, path_segment
from icemesh.errors import BadRequest

# Properties a client needs to read and write table files itself; handed out in loadTable `config`.
SECRET_KEYS = ("s3.access-key-id", "s3.secret-access-key", "s3.session-token")
CLIENT_STORAGE_KEYS = ("s3.endpoint", "s3.region", "s3.access-key-id", "s3.secret-access-key", "s3.path-style-access")
SHARED_KEYS = ("s3.access-key-id", "s3.secret-access-key")
MAX_METADATA_BYTES = 64 * 1024 * 1024  # a metadata file (or its gzip expansion) larger than this is refused


class MetadataTooLarge(BadRequest):
    """A metadata file the catalog refuses to read whole (too big, or a gzip bomb)."""


def normalize_root(location: str) -> str:
    """Turn a user's warehouse argument (a path, `file://` or `s3://` URI) into a canonical root URI."""
    location = location.strip()
    if not location:
        raise BadRequest("Warehouse location is empty: pass a path, file:///... or s3://bucket/prefix")
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else location
        return "file://" + os.path.abspath(os.path.expanduser(path)).rstrip("/")
    if parsed.scheme in ("s3", "s3a"):
        if not parsed.netloc:
            raise BadRequest(f"Warehouse {location!r} names no bucket: use s3://bucket/prefix")
        return f"s3://{parsed.netloc}{_object_path(parsed.path)}"
    raise BadRequest(f"Unsupported warehouse scheme {parsed.scheme!r}: use a path, file:// or s3://")


def _object_path(path: str) -> str:
    """`/key/prefix` without a trailing slash, or "" for a bucket root.

    Leading slashes are stripped before normalizing: `posixpath.normpath` keeps exactly two leading
    slashes (POSIX leaves `//x` implementation-defined), which would turn `s3://b/wh` into `s3://b//wh`,
    an empty first key segment that S3 clients refuse."""
    key = posixpath.normpath("/" + path.lstrip("/")).rstrip("/")
    return key if key != "/" else ""


@dataclass
class Warehouse:
    """One storage root with its IO; every location the catalog writes or accepts is checked here."""

    name: str
    root: str
    properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = normalize_root(self.root)
        self._scheme = urlparse(self.root).scheme

    @functools.cached_property
    def io(self) -> FileIO:
        """Made at first use: it imports pyarrow (~1 s), which a server's start and first listing need not wait for."""
        return load_file_io({**self.properties, "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}, self.root)

    @property
    def is_local(self) -> bool:
        return self._scheme == "file"

    # -- confinement -------------------------------------------------------------------------------

    def contains(self, location: str) -> bool:
        """True when `location` lies strictly inside the root, after resolving `.` and refusing `..`."""
        canonical = self.canonical(location)
        return canonical is not None and canonical.startswith(self.root + "/")

    def canonical(self, location: str) -> str | None:
        if not isinstance(location, str) or not location or "\x00" in location:
            return None
        parsed = urlparse(location)
        scheme = parsed.scheme or "file"
        if scheme == "s3a":
            scheme = "s3"
        if scheme != self._scheme:
            return None
        path = parsed.path if parsed.scheme else location
        if ".." in path.split("/") or ".." in unquote(path).split("/"):  # engines decode %2e%2e in URIs
            return None
        if scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                return None
            return self._resolved("file://" + posixpath.normpath(path).rstrip("/"))
        return f"s3://{parsed.netloc}{_object_path(path)}"

    def _resolved(self, location: str) -> str | None:
        """A local location with its symlinks followed, spelled under the root; None when a link leads out.
        So a link inside one table's folder to another's counts as the other's (every file has one owner)."""
        path = location[len("file://"):]
        real = os.path.realpath(path)
        real_root = self._real_root()
        if real == real_root:
            return self.root
        if not real.startswith(real_root + "/"):
            return None if path.startswith(self.root[len("file://"):] + "/") else location  # outside: refused later
        return self.root + real[len(real_root):]

    def _real_root(self) -> str:
        if not hasattr(self, "_real_root_path"):
            self._real_root_path = os.path.realpath(self.root[len("file://"):])
        return self._real_root_path

    def require_inside(self, location: str, what: str = "location") -> str:
        canonical = self.canonical(location)
        if canonical is None or not canonical.startswith(self.root + "/"):
            raise BadRequest(f"Table {what} {location!r} is outside the warehouse {self.root}: omit it or use a path under it")
        return canonical

    # -- layout ------------------------------------------------------------------------------------

    def default_table_location(self, namespace: Namespace, table: str) -> str:
        """`<root>/<ns>/<table>-<uuid>`: readable, and unique so a re-created table never reuses old files."""
        ns_path = "/".join(path_segment(level) for level in namespace.levels)
        return f"{self.root}/{ns_path}/{path_segment(table)}-{uuid.uuid4().hex}"

    @staticmethod
    def metadata_file_location(table_location: str, version: int) -> str:
        return f"{table_location.rstrip('/')}/metadata/{version:05d}-{uuid.uuid4()}.metadata.json"

    def prepare_table_location(self, location: str) -> None:
        """Local filesystems need `metadata/` and `data/` to exist before DuckDB writes (it does not mkdir)."""
        if self.is_local:
            path = self._local_path(location)
            os.makedirs(os.path.join(path, "metadata"), exist_ok=True)
            os.makedirs(os.path.join(path, "data"), exist_ok=True)

    # -- files -------------------------------------------------------------------------------------

    def read_bytes(self, location: str) -> bytes:
        """A metadata file, bounded: neither the file nor its gzip expansion may exceed MAX_METADATA_BYTES."""
        with self.io.new_input(location).open() as stream:
            data = stream.read(MAX_METADATA_BYTES + 1)
        if location.endswith(".gz.metadata.json") or data[:2] == b"\x1f\x8b":
            try:
                with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
                    data = unzipped.read(MAX_METADATA_BYTES + 1)
            except (OSError, EOFError):
                raise MetadataTooLarge(f"{location} is not a readable gzip file") from None
        if len(data) > MAX_METADATA_BYTES:
            raise MetadataTooLarge(f"{location} is larger than {MAX_METADATA_BYTES // (1024 * 1024)} MiB of table metadata")
        return data

    def write_new_file(self, location: str, data: bytes) -> None:
        """Write a file that must not exist yet (metadata files are immutable once written)."""
        with self.io.new_output(location).create(overwrite=False) as stream:
            stream.write(data)

    def delete_file(self, location: str) -> None:
        try:
            self.io.delete(location)
        except (FileNotFoundError, OSError):
            pass

    def purge(self, table_location: str, keep: tuple[str, ...] = ()) -> None:
        """Delete every file under a table location, except under `keep` (locations of other tables that a
        catalog from before location ownership let nest inside it); only ever called for locations in the root."""
        location = self.require_inside(table_location)
        keep = tuple(k.rstrip("/") + "/" for k in keep)
        if self.is_local:
            root = self._local_path(location)
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
                return
            for folder, _dirs, names in os.walk(root):
                for name in names:
                    path = os.path.join(folder, name)
                    if not ("file://" + path).startswith(keep):
                        os.unlink(path)
            return
        from pyarrow import fs as pafs

        filesystem, path = self._arrow_filesystem(location)
        if not keep:
            try:
                filesystem.delete_dir(path)
                return
            except (FileNotFoundError, OSError):
                pass
        infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        for info in infos:
            if info.type == pafs.FileType.File and not ("s3://" + info.path).startswith(keep):
                filesystem.delete_file(info.path)

    def public_properties(self) -> dict[str, str]:
        """Settings safe to persist in the catalog database: never keys or session tokens."""
        return {k: v for k, v in self.properties.items() if k not in SECRET_KEYS}

    def client_config(self) -> dict[str, str]:
        """Storage settings a client needs to reach the files: endpoint, region and the keys, but only when
        the keys are handed out too (`serve --share-storage-keys`). Half a set is worse than none: DuckDB turns
        any `s3.*` config into a secret scoped to the table that shadows the user's own S3 secret, so an
        endpoint without keys makes its reads and writes fail. Without keys, clients bring their own S3 settings."""
        if not all(self.properties.get(key) for key in SHARED_KEYS):
            return {}
        config = {key: self.properties[key] for key in CLIENT_STORAGE_KEYS if key in self.properties}
        if "s3.region" in config:
            config["client.region"] = config["s3.region"]  # Iceberg Java's (Spark's) name; pyiceberg's is s3.region
        return config

    def client_settings(self) -> dict[str, str]:
        """Where a client reaches the files (endpoint, addressing, region), without any key: what goes with
        vended credentials."""
        config = {key: self.properties[key] for key in CLIENT_STORAGE_KEYS
                  if key in self.properties and key not in SECRET_KEYS}
        if "s3.region" in config:
            config["client.region"] = config["s3.region"]
        return config

    def _local_path(self, location: str) -> str:
        parsed = urlparse(location)
        return parsed.path if parsed.scheme else location

    def _arrow_filesystem(self, location: str):
        from pyarrow import fs as pafs

        parsed = urlparse(location)
        endpoint = self.properties.get("s3.endpoint")
        scheme = None
        if endpoint:
            ep = urlparse(endpoint)
            scheme, endpoint = ep.scheme or "http", ep.netloc or ep.path
        filesystem = pafs.S3FileSystem(
            access_key=self.properties.get("s3.access-key-id"),
            secret_key=self.properties.get("s3.secret-access-key"),
            region=self.properties.get("s3.region", "us-east-1"),
            endpoint_override=endpoint,
            scheme=scheme or "https",
            force_virtual_addressing=False,
        )
        return filesystem, f"{parsed.netloc}{parsed.path}"
