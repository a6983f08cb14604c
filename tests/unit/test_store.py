"""spine/lake/store.py on moto's S3 server on loopback: what a pull and a push send and keep,
and what they refuse (a working copy and a store that both changed, a working copy of another
store, a replaced raw capture, a damaged object, a store another run holds)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spine import config as config_
from spine.lake import LakeBusy, store
from tests.helpers import REPO, S3Server

URL = "s3://spine-store/lake"


@pytest.fixture(scope="module")
def server():
    s3 = S3Server("spine-store")
    yield s3
    s3.stop()


@pytest.fixture
def s3(server, monkeypatch, request):
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv(store.HELD, raising=False)
    url = f"{URL}/{request.node.name}"  # a store of its own for each test
    yield store.Store(url)


def lake(root: Path, files: dict[str, bytes]) -> Path:
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


FILES = {"raw/finra_otc_weekly/tier=T1/week_start=2025-06-02/abc.parquet": b"raw",
         "clean/finra_otc_weekly/tier=T1/week_start=2025-06-02/part-0.parquet": b"clean v1",
         "manifest/one.jsonl": b"{}\n"}


def contents(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)}


def test_a_push_and_a_pull_carry_the_lake_with_its_mtimes(s3, server, tmp_path):
    a = lake(tmp_path / "a", FILES)
    os.utime(a / "manifest/one.jsonl", ns=(1_000_000_000, 1_000_000_000))
    assert "pushed 3 files" in s3.push(a)
    assert s3.push(a) == ""  # nothing changed: no request
    b = tmp_path / "b"
    server.requests.clear()
    assert "pulled 3 files" in store.Store(s3.url).pull(b)
    assert dict(server.requests) == {"GET": 4}  # the index, then each file once
    assert contents(b) == FILES
    assert (b / "manifest/one.jsonl").stat().st_mtime_ns == 1_000_000_000
    server.requests.clear()
    assert store.Store(s3.url).pull(b) == ""  # current: the index alone
    assert dict(server.requests) == {"GET": 1}


def test_what_a_run_removes_is_removed_from_the_store_and_the_other_copies(s3, tmp_path):
    a = lake(tmp_path / "a", FILES)
    s3.push(a)
    b = tmp_path / "b"
    s3.pull(b)
    gone = "clean/finra_otc_weekly/tier=T1/week_start=2025-06-02/part-0.parquet"
    (a / gone).unlink()
    assert "removed 1" in s3.push(a)
    assert "removed 1" in s3.pull(b)
    assert gone not in contents(b)
    assert not s3.fs.exists(f"{s3.base}/{gone}")


def test_a_copy_that_changed_while_the_store_changed_is_refused(s3, tmp_path):
    a = lake(tmp_path / "a", FILES)
    s3.push(a)
    b = tmp_path / "b"
    s3.pull(b)
    lake(a, {"calc/x/part-0.parquet": b"from a"})
    s3.push(a)
    lake(b, {"calc/x/part-0.parquet": b"from b"})
    with pytest.raises(store.StoreConflict, match="has changes it has not pushed "
                       r"\(calc/x/part-0.parquet\).*Move .* aside"):
        s3.pull(b)
    assert (b / "calc/x/part-0.parquet").read_bytes() == b"from b"  # nothing lost


def test_a_folder_that_is_not_a_working_copy_of_the_store_is_refused(s3, tmp_path):
    s3.push(lake(tmp_path / "a", FILES))
    other = lake(tmp_path / "other", {"clean/x/part-0.parquet": b"mine"})
    with pytest.raises(store.StoreConflict, match="other holds files the lake store .* does "
                       "not .*clean/x/part-0.parquet"):
        s3.pull(other)
    assert contents(other) == {"clean/x/part-0.parquet": b"mine"}
    same = lake(tmp_path / "same", FILES)  # a copy of the same lake is adopted
    assert "pulled" in s3.pull(same)


def test_a_raw_capture_is_never_replaced_in_the_store(s3, tmp_path):
    a = lake(tmp_path / "a", FILES)
    s3.push(a)
    raw = next(rel for rel in FILES if rel.startswith("raw/"))
    (a / raw).write_bytes(b"tampered")
    with pytest.raises(store.StoreConflict, match="abc.parquet differs from the lake store's "
                       "copy.*never replaced.*spine verify"):
        s3.push(a)
    assert s3.fs.cat_file(f"{s3.base}/{raw}") == b"raw"


def test_a_damaged_object_is_left_out_named_and_replaced_by_the_next_push(s3, tmp_path):
    s3.push(lake(tmp_path / "a", FILES))
    clean = next(rel for rel in FILES if rel.startswith("clean/"))
    s3.fs.pipe_file(f"{s3.base}/{clean}", b"clean v2")  # same size, other bytes
    b = tmp_path / "b"
    line = s3.pull(b)
    assert "pulled 2 files" in line and f"1 damaged in the store (SHA-256 not its index's), " \
        f"left out: {clean}" in line and "spine repair" in line
    assert clean not in contents(b)
    lake(b, {clean: FILES[clean]})  # what spine repair (or the next run) rebuilds
    assert "pushed 1 files" in s3.push(b)
    assert s3.fs.cat_file(f"{s3.base}/{clean}") == FILES[clean]


def test_the_lock_names_its_holder_and_a_dead_holder_is_taken_over(s3):
    s3.lock()
    with pytest.raises(LakeBusy, match=r"held by .* \(pid \d+\) since .*run.lock"):
        store.Store(s3.url).lock()
    s3.unlock()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    holder = json.dumps({"host": os.uname().nodename, "pid": int(dead), "since": "then"})
    s3.fs.pipe_file(f"{s3.base}/{store.LOCK}", holder.encode())
    other = store.Store(s3.url)
    other.lock()  # the holder ran on this host and is gone
    assert other.held and os.environ[store.HELD] == s3.url
    other.unlock()
    assert store.HELD not in os.environ


def test_a_spine_command_on_a_held_store_says_so_in_one_line(s3, tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config_.load(lake_root=str(tmp_path / "copy"),
                                               lake_store=s3.url)))
    s3.lock()
    try:
        proc = subprocess.run([sys.executable, "-m", "spine.cli", "verify", "--configfile",
                               str(cfg)], cwd=REPO, capture_output=True, text=True,
                              env={k: v for k, v in os.environ.items() if k != store.HELD})
    finally:
        s3.unlock()
    assert proc.returncode == 2
    assert proc.stderr.startswith("spine verify: the lake store s3://") and "Traceback" not in \
        proc.stderr and len(proc.stderr.splitlines()) == 1


def test_trigger_records_move_to_a_working_copy_at_another_path(tmp_path, monkeypatch):
    """Snakemake's records of a lake's outputs, packed under one root and unpacked under another:
    names and contents follow the root; records of other lakes stay out; a long path's record
    is split into folders as Snakemake splits it."""
    from spine.lake import triggers

    (tmp_path / "Snakefile").write_text("")
    monkeypatch.chdir(tmp_path)

    def record(root: str, rel: str) -> bytes:
        params = json.dumps({"config": {"lake_root": root}, "week_start": "2025-06-02"})
        return json.dumps({"params": [params], "input": [f"{root}/clean/part-0.parquet"],
                           "shellcmd": f"python -m spine.notebooks calc {root}/runs/{rel}"}
                          ).encode()

    rels = ["calc/venue_share/part-0.parquet", "reports/" + "x" * 300 + "/part-0.parquet"]
    for root in ("data", "elsewhere"):
        for rel in rels:
            path = triggers.folder() / triggers._name(f"{root}/{rel}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(record(root, rel))
    assert any(p.name.startswith("@") for p in triggers.folder().rglob("*"))  # the long one
    packed = triggers.pack("data")
    assert packed == triggers.pack("data") and b"elsewhere" not in packed
    assert triggers.unpack("/scratch/lake", packed) == 2
    for rel in rels:
        got = (triggers.folder() / triggers._name(f"/scratch/lake/{rel}")).read_bytes()
        assert got == record("/scratch/lake", rel)


def test_a_store_that_cannot_be_reached_is_named_in_one_line(s3, tmp_path, monkeypatch):
    cfg = {"lake_root": str(tmp_path / "copy"), "lake_store": "s3://no-such-bucket/lake"}
    with pytest.raises(store.StoreError, match=r"the lake store s3://no-such-bucket/lake cannot "
                       r"be used \(taking its lock: FileNotFoundError.*AWS_ENDPOINT_URL"):
        store.begin(cfg, write=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
    with pytest.raises(store.StoreError, match="EndpointConnectionError"):
        store.begin(dict(cfg, lake_store=s3.url), write=False)
    assert store.HELD not in os.environ


def test_a_failed_push_is_said_and_the_lock_released(s3, tmp_path, monkeypatch):
    import io

    out = io.StringIO()
    root = lake(tmp_path / "copy", FILES)
    held = store.begin({"lake_root": str(root), "lake_store": s3.url}, write=True, out=out)

    def down(root):
        raise OSError("network is unreachable")

    monkeypatch.setattr(held, "push", down)
    store.end(held, root, out, raising=False)  # as at the process's exit
    assert "cannot be used (pushing" in out.getvalue() and "keeps what this run wrote" in \
        out.getvalue() and "network is unreachable" in out.getvalue()
    assert not held.held and store.HELD not in os.environ
    again = store.Store(s3.url)
    again.lock()  # free again
    again.unlock()
