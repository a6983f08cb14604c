"""Snakemake's rerun-trigger records of a lake's outputs, made portable between working copies.

Snakemake keeps, per output, what its job ran with (params, code, the set of inputs) in
`.snakemake/metadata/` of the workflow's directory, named by the URL-safe base64 of the output's
path (a long name split into folders of `@`-marked parts), and reruns a job when they change. A
working copy on a new machine has none, so a changed param (a calculation's version, a report
setting) would rerun nothing there. The lake store (spine/lake/store.py) carries them in one
object: `pack` takes the records of the outputs under a lake root with that root written as
`{LAKE_ROOT}` (in names and contents), `unpack` writes them back for another root.
"""

from __future__ import annotations

import base64
import os
import re
import zipfile
from io import BytesIO
from pathlib import Path

PLACEHOLDER = b"{LAKE_ROOT}"


def folder() -> Path:
    """The metadata folder of the workflow this runs in (the Snakefile's directory; a `spine`
    command runs Snakemake from the repository it is run in, else the package's)."""
    here = Path.cwd()
    base = here if (here / "Snakefile").exists() else Path(__file__).resolve().parents[2]
    return base / ".snakemake" / "metadata"


def _root_pattern(root: str) -> re.Pattern[bytes]:
    # the root as a path's start inside a record: after a quote, a space, `=`, `[` or `,` and
    # before `/` or a closing quote (so a root `data` is not found inside `metadata/`)
    return re.compile(rb"(?<=[\"' \\=\[,(])" + re.escape(root.encode()) + rb"(?=[/\"'\\])")


def _name(path: str) -> Path:
    """Snakemake's record name for an output path (snakemake/persistence/file.py)."""
    encoded = base64.urlsafe_b64encode(path.encode()).decode()
    size = (os.pathconf(folder().parent, "PC_NAME_MAX") if folder().parent.exists() else 255) - 1
    parts = [encoded[i:i + size] for i in range(0, len(encoded), size)]
    return Path(*(["@" + p for p in parts[:-1]] + [parts[-1]]))


def pack(root: str | Path) -> bytes:
    """The records of the outputs under `root`, zipped in name order with fixed times (the same
    records give the same bytes); b"" when there are none."""
    base, root = folder(), str(Path(root))
    prefix, pattern, records = root + "/", _root_pattern(root), {}
    for dirpath, _, files in os.walk(base):
        for name in files:
            rel = (Path(dirpath) / name).relative_to(base)
            key = "".join(part.removeprefix("@") for part in rel.parts)
            try:
                path = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            if path.startswith(prefix):
                body = pattern.sub(PLACEHOLDER, (Path(dirpath) / name).read_bytes())
                records[path[len(prefix):]] = body
    if not records:
        return b""
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(records):
            zf.writestr(zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0)), records[rel],
                        compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def unpack(root: str | Path, data: bytes) -> int:
    """Write the packed records back as the records of the outputs under `root`; their count."""
    base, root = folder(), str(Path(root))
    with zipfile.ZipFile(BytesIO(data)) as zf:
        for rel in zf.namelist():
            path = base / _name(f"{root}/{rel}")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.pull")
            tmp.write_bytes(zf.read(rel).replace(PLACEHOLDER, root.encode()))
            os.replace(tmp, path)
        return len(zf.namelist())
