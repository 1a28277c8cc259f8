"""spec/shards.md's reader rules, the same in every reader (`alat decode`, `alat info`, LatentCrops,
LatentStream): the tar subset (no links, devices, sparse members, PAX bombs), names, keys held twice,
truncation named, the index checked against the shard; and LatentStream's split, shuffle and resume."""
from __future__ import annotations

import io
import json
import tarfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from latentcodec.dataset import LatentCrops, LatentStream, delivered_by_worker
from latentcodec.errors import AlatFormatError, LatentCodecError
from latentcodec.format.shards import INDEX_NAME, read_table, sources_under, write_shard
from tests.alat_fixtures import make_file, make_header
from tests.test_folders import alat


def _alat(seconds: float, channels: int = 1, seed: int = 0) -> bytes:
    return make_file(make_header(channels=channels, seconds=seconds, chunk_frames=100), seed=seed)[0]


def _raw_shard(path: Path, entries: list[tuple[str, bytes]], kind: bytes = tarfile.REGTYPE) -> None:
    """A tar of ``entries`` written by tarfile (no index), every member of type ``kind``."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.type, info.size = kind, len(data) if kind == tarfile.REGTYPE else 0
            t.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _shards(folder: Path, keys_per_shard: list[list[str]], seconds: float = 2.0) -> dict[str, bytes]:
    """Shards with an index, as `alat encode --shard-size` writes them; returns each key's bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    stage, out = folder.parent / (folder.name + "-staged"), {}
    for n, keys in enumerate(keys_per_shard):
        files = []
        for key in keys:
            out[key] = _alat(seconds + 0.3 * (len(out) % 5), channels=1 + len(out) % 2, seed=len(out))
            p = stage / f"{key}.alat"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(out[key])
            files.append((key, p))
        with open(folder / f"{n:06d}.tar", "wb") as f:
            write_shard(f, files)
    return out


def _one_line_error(args: list[str], needle: str) -> None:
    r = alat(*args)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1 and needle in r.stderr, r.stderr


@pytest.mark.parametrize("name", ["./x.alat", "a//x.alat", "a/./x.alat", "a\\x.alat"])
def test_names_with_empty_or_dot_parts_make_the_shard_unreadable(tmp_path, name) -> None:
    _raw_shard(tmp_path / "000000.tar", [(name, _alat(1.0))])
    for args in (["info", str(tmp_path)], ["info", str(tmp_path / "000000.tar")],
                 ["decode", str(tmp_path), str(tmp_path / "dec")]):
        _one_line_error(args, "names a path outside the shard's folder")
    with pytest.raises(AlatFormatError, match="outside the shard's folder"):
        LatentCrops(tmp_path, crop_frames=4)
    with pytest.raises(AlatFormatError, match="outside the shard's folder"):
        list(LatentStream(tmp_path, crop_frames=4))
    assert not (tmp_path / "dec").exists()


def test_a_shard_cut_inside_a_header_names_the_last_key(tmp_path) -> None:
    _raw_shard(tmp_path / "000000.tar", [("a.alat", _alat(1.0)), ("b.alat", _alat(1.0, seed=1))])
    data = (tmp_path / "000000.tar").read_bytes()
    t = read_table(tmp_path / "000000.tar")
    end = int(t.offsets[-1]) - -int(t.sizes[-1]) // 512 * 512
    second = data.index(b"b.alat")  # inside the second member's header
    (tmp_path / "000000.tar").write_bytes(data[:second + 50])
    for args in (["info", str(tmp_path)], ["decode", str(tmp_path), str(tmp_path / "dec")]):
        _one_line_error(args, "000000.tar: ends inside a header (truncated); the last member read whole: 'a.alat'")
    assert not (tmp_path / "dec").exists()
    (tmp_path / "000000.tar").write_bytes(data[:end])  # every member whole, no end-of-archive marker
    _one_line_error(["info", str(tmp_path)], "ends inside a header (truncated)")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                                  tarfile.FIFOTYPE, tarfile.GNUTYPE_SPARSE])
def test_links_devices_and_sparse_members_are_refused(tmp_path, kind) -> None:
    _raw_shard(tmp_path / "000000.tar", [("x.alat", b"")], kind=kind)
    _one_line_error(["info", str(tmp_path)], "a shard holds regular files only")


def test_pax_sparse_maps_and_bombs_are_refused_with_bounded_work(tmp_path) -> None:
    with tarfile.open(tmp_path / "000000.tar", "w", format=tarfile.PAX_FORMAT) as t:
        info = tarfile.TarInfo("x.alat")
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "x.alat"}
        t.addfile(info, io.BytesIO(b""))
    _one_line_error(["info", str(tmp_path)], "GNU sparse member")
    # CVE-2024-6232's shape: one PAX header of many short records; and one over the bound
    bomb = b"5 a=\n" * 12_000
    for records, needle in ((bomb, "not read"), (b"70000 " + b"p" * 69_994 + b"\n", "over 64 KiB")):
        head = tarfile.TarInfo("././@PaxHeader")
        head.type, head.size = tarfile.XHDTYPE, len(records)
        raw = head.tobuf(tarfile.USTAR_FORMAT) + records + bytes(-len(records) % 512) + bytes(1024)
        (tmp_path / "000000.tar").write_bytes(raw)
        tracemalloc.start()
        try:
            read_table(tmp_path / "000000.tar")
        except AlatFormatError as e:
            assert needle == "over 64 KiB" and needle in str(e)
        else:
            assert needle == "not read"  # records of no use are skipped: a shard with no member
        assert tracemalloc.get_traced_memory()[1] < 20 * len(raw)
        tracemalloc.stop()


def test_a_key_twice_is_refused_by_every_reader(tmp_path) -> None:
    _shards(tmp_path / "d", [["a", "b"], ["b", "c"]])
    for args in (["info", str(tmp_path / "d")], ["decode", str(tmp_path / "d"), str(tmp_path / "dec")]):
        _one_line_error(args, "key 'b' is held by both")
    with pytest.raises(LatentCodecError, match="key 'b' is held by both"):
        LatentCrops(tmp_path / "d", crop_frames=4)
    (tmp_path / "e").mkdir()
    _raw_shard(tmp_path / "e" / "000000.tar", [("a.alat", _alat(1.0)), ("a.alat", _alat(1.0))])
    _one_line_error(["info", str(tmp_path / "e")], "holds key 'a' twice")
    (tmp_path / "f").mkdir()
    _shards(tmp_path / "f", [["x"]])
    (tmp_path / "f" / "x.alat").write_bytes(_alat(1.0))  # a loose file beside a shard holding the same key
    with pytest.raises(LatentCodecError, match="key 'x' is held by both"):
        sources_under(tmp_path / "f")


def test_the_index_is_checked_and_old_shards_read_the_same(tmp_path) -> None:
    _shards(tmp_path / "new", [["a", "b/c", "d"], ["e", "f"]])
    t = read_table(tmp_path / "new" / "000000.tar")
    assert t.keys == ["a", "b/c", "d"] and t.facts is not None and t.facts[:, 0].tolist() == [1, 2, 1]
    (tmp_path / "old").mkdir()
    for shard in sorted((tmp_path / "new").glob("*.tar")):  # the same members without the index
        with tarfile.open(shard) as src:
            entries = [(m.name, src.extractfile(m).read()) for m in src if m.name != INDEX_NAME]
        _raw_shard(tmp_path / "old" / shard.name, entries)
    assert read_table(tmp_path / "old" / "000000.tar").facts is None
    new, old = LatentCrops(tmp_path / "new", crop_frames=4, stride=3), LatentCrops(tmp_path / "old", crop_frames=4,
                                                                                       stride=3)
    assert len(new) == len(old) > 0 and np.array_equal(new.facts[:, 3:], old.facts[:, 3:])
    assert all(torch.equal(new[i], old[i]) for i in range(len(new)))

    shard = tmp_path / "new" / "000001.tar"
    with tarfile.open(shard) as src:
        entries = [(m.name, src.extractfile(m).read()) for m in src]
    doc = json.loads(entries[-1][1])
    for forged in ({**doc, "sizes": doc["sizes"][::-1]}, {**doc, "channels": [2, 2]}, {**doc, "hops": [0, 160]},
                   {**doc, "samples": [1e300, 5]}, "not an object", [[[[]]]]):
        _raw_shard(shard, entries[:-1] + [(INDEX_NAME, json.dumps(forged).encode())])
        if forged == {**doc, "channels": [2, 2]}:  # within the bounds, but not what the member's header says
            crops = LatentCrops(tmp_path / "new", crop_frames=4)
            with pytest.raises(AlatFormatError, match="disagrees with its shard's index"):
                [crops[i] for i in range(len(crops))]
            continue
        with pytest.raises(AlatFormatError, match="its index .* does not match its members"):
            read_table(shard)
    _raw_shard(shard, entries[:-1] + [(INDEX_NAME, b" " * 10_000_000)])
    with pytest.raises(AlatFormatError, match="does not match"):
        read_table(shard)


def _stream_corpus(folder: Path) -> dict[str, bytes]:
    return _shards(folder, [[f"s{n}/k{i}" for i in range(3 + n % 2)] for n in range(7)])


def _crop_ids(crops: list[torch.Tensor]) -> list[bytes]:
    return [c.numpy().tobytes() for c in crops]


def test_the_stream_reads_every_crop_once_over_ranks_and_workers(tmp_path) -> None:
    _stream_corpus(tmp_path / "d")
    every = _crop_ids([LatentCrops(tmp_path / "d", crop_frames=8, stride=5)[i]
                       for i in range(len(LatentCrops(tmp_path / "d", crop_frames=8, stride=5)))])
    seen = []
    for rank in range(2):
        ds = LatentStream(tmp_path / "d", crop_frames=8, stride=5, shuffle=16, seed=3, rank=rank, world_size=2)
        for batch in torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2):
            seen += _crop_ids(list(batch))
    assert sorted(seen) == sorted(every) and len(set(every)) == len(every)

    def epoch_order(epoch: int) -> list[bytes]:
        ds = LatentStream(str(tmp_path / "d" / "{000000..000006}.tar"), crop_frames=8, stride=5, shuffle=16, seed=3)
        ds.set_epoch(epoch)
        return _crop_ids(list(ds))

    assert epoch_order(0) == epoch_order(0) and sorted(epoch_order(1)) == sorted(every)
    assert epoch_order(0) != epoch_order(1)


@pytest.mark.parametrize("workers", [0, 2])
def test_the_stream_resumes_the_rest_of_the_epoch(tmp_path, workers) -> None:
    _stream_corpus(tmp_path / "d")

    def loader(ds: LatentStream) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(ds, batch_size=3, num_workers=workers)

    ds = LatentStream(tmp_path / "d", crop_frames=8, stride=5, shuffle=10, seed=7, rank=1, world_size=2)
    ds.set_epoch(4)
    whole = [b for b in loader(ds)]
    stop = len(whole) // 2 + 1
    state = ds.state_dict(delivered=sum(len(b) for b in whole[:stop]))
    again = LatentStream(tmp_path / "d", crop_frames=8, stride=5, shuffle=10, seed=0, rank=1, world_size=2)
    again.load_state_dict(json.loads(json.dumps(state)), batch_size=3, num_workers=workers)
    rest = [b for b in loader(again)]
    assert len(rest) == len(whole) - stop and all(torch.equal(a, b) for a, b in zip(rest, whole[stop:]))


def test_delivered_by_worker_follows_the_dataloaders_turns() -> None:
    assert delivered_by_worker(0, 4, [10, 3]) == ([0, 0], 0)
    assert delivered_by_worker(4, 4, [10, 3]) == ([4, 0], 1)
    assert delivered_by_worker(7, 4, [10, 3]) == ([4, 3], 0)  # worker 1's short batch
    assert delivered_by_worker(11, 4, [10, 3]) == ([8, 3], 1)  # worker 1, out of crops, passes its turn
    assert delivered_by_worker(13, 4, [10, 3]) == ([10, 3], 1)
    with pytest.raises(LatentCodecError, match="not at a batch's end"):
        delivered_by_worker(6, 4, [10, 3])
    with pytest.raises(LatentCodecError, match="the epoch holds 13"):
        delivered_by_worker(14, 4, [10, 3])


def test_a_stream_needs_shards(tmp_path) -> None:
    with pytest.raises(LatentCodecError, match="no shards"):
        LatentStream(tmp_path, crop_frames=8)
