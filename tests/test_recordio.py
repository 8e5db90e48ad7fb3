"""RecordIO: exact against the mxnet-written fixtures, round trips, split records, corrupt input."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import pickle
import struct

import numpy as np
import pytest
from conftest import require
from hypothesis import given, settings
from hypothesis import strategies as st

from arface_repro.errors import FormatError
from arface_repro.io.recordio import (
    MAGIC_BYTES,
    IndexedRecordReader,
    IndexedRecordWriter,
    IRHeader,
    RecordReader,
    decode_record,
    encode_record,
    pack,
    unpack,
)


def _fixture(shared, name):
    base = shared / "fixtures" / "recordio"
    require(base / f"{name}.rec")
    manifest = json.loads((base / f"{name}.manifest.json").read_text())["records"]
    return base / f"{name}.idx", base / f"{name}.rec", manifest


@pytest.mark.parametrize("name", ["train", "edge"])
def test_fixture_records_match_manifest(shared, name):
    idx, rec, manifest = _fixture(shared, name)
    reader = IndexedRecordReader(idx, rec)
    assert len(reader) == len(manifest)
    assert sorted(reader.keys) == sorted(int(k) for k in manifest)
    for key in reader.keys:
        want = manifest[str(key)]
        header, payload = unpack(reader.read(key))
        assert (header.flag, header.id, header.id2) == (want["flag"], want["id"], want["id2"]), key
        if header.flag > 0:
            assert header.label.dtype == np.float32
            np.testing.assert_array_equal(header.label, np.asarray(want["label"], np.float32))
        else:
            assert isinstance(header.label, float) and header.label == want["label"]
        assert len(payload) == want["payload_len"]
        assert hashlib.sha256(payload).hexdigest() == want["payload_sha256"], key


def test_edge_fixture_really_has_split_records(shared):
    _, rec, _ = _fixture(shared, "edge")
    raw = rec.read_bytes()
    flags, pos = set(), 0
    while pos < len(raw):
        _, lrec = struct.unpack_from("<II", raw, pos)
        flags.add(lrec >> 29)
        pos += 8 + (((lrec & ((1 << 29) - 1)) + 3) & ~3)
    assert flags == {0, 1, 2, 3}


@pytest.mark.parametrize("name", ["train", "edge"])
def test_rewrite_is_byte_identical(shared, tmp_path, name):
    idx, rec, _ = _fixture(shared, name)
    reader = IndexedRecordReader(idx, rec)
    with IndexedRecordWriter(tmp_path / "o.idx", tmp_path / "o.rec") as writer:
        for key in reader.keys:
            header, payload = unpack(reader.read(key))
            writer.write_idx(key, pack(header, payload))
    assert (tmp_path / "o.rec").read_bytes() == rec.read_bytes()
    assert (tmp_path / "o.idx").read_bytes() == idx.read_bytes()


def test_sequential_reader_matches_indexed(shared):
    idx, rec, _ = _fixture(shared, "edge")
    reader = IndexedRecordReader(idx, rec)
    by_offset = {reader.offset(k): reader.read(k) for k in reader.keys}
    seq = list(RecordReader(rec).iter_with_offsets())
    assert dict(seq) == by_offset and len(seq) == len(by_offset)


def _reference_frame(data: bytes) -> bytes:
    """The reference writer's loop, written literally: scan aligned words, split at each magic word."""
    out, dptr, n = b"", 0, len(data)
    for i in range(0, n // 4 * 4, 4):
        if data[i : i + 4] == MAGIC_BYTES:
            out += MAGIC_BYTES + struct.pack("<I", ((1 if dptr == 0 else 2) << 29) | (i - dptr)) + data[dptr:i]
            dptr = i + 4
    out += MAGIC_BYTES + struct.pack("<I", ((3 if dptr else 0) << 29) | (n - dptr)) + data[dptr:]
    return out + b"\0" * ((-n) % 4)


_chunks = st.lists(
    st.one_of(st.binary(max_size=13), st.just(MAGIC_BYTES), st.just(MAGIC_BYTES * 2)), max_size=8
)


@settings(max_examples=150, deadline=None)
@given(_chunks)
def test_framing_matches_reference_and_round_trips(chunks):
    data = b"".join(chunks)
    framed = encode_record(data)
    assert framed == _reference_frame(data)
    assert len(framed) % 4 == 0
    back, end = decode_record(framed, 0)
    assert back == data and end == len(framed)


@settings(max_examples=40, deadline=None)
@given(
    records=st.lists(
        st.tuples(
            st.one_of(
                st.floats(-1e6, 1e6, width=32),
                st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=5),
            ),
            st.integers(0, 2**64 - 1),
            _chunks,
        ),
        max_size=6,
    ),
    shuffle_seed=st.integers(0, 1000),
)
def test_write_read_round_trip(tmp_path_factory, records, shuffle_seed):
    d = tmp_path_factory.mktemp("rt")
    keys = list(np.random.default_rng(shuffle_seed).permutation(len(records) * 3)[: len(records)])
    with IndexedRecordWriter(d / "a.idx", d / "a.rec") as w:
        for key, (label, id2, chunks) in zip(keys, records):
            w.write_idx(key, pack(IRHeader(0, label, int(key), id2), b"".join(chunks)))
    reader = IndexedRecordReader(d / "a.idx", d / "a.rec")
    assert reader.keys == [int(k) for k in keys]
    for key, (label, id2, chunks) in zip(keys, records):
        header, payload = unpack(reader.read(key))
        assert payload == b"".join(chunks)
        assert (header.id, header.id2) == (key, id2)
        if isinstance(label, list):
            assert header.flag == len(label)
            np.testing.assert_array_equal(header.label, np.float32(label))
        else:
            assert header.flag == 0 and header.label == np.float32(label)


def test_magic_inside_header_labels_is_split_and_restored(tmp_path):
    magic_as_float = struct.unpack("<f", MAGIC_BYTES)[0]
    record = pack(IRHeader(0, [magic_as_float, 1.0], 7, 0), MAGIC_BYTES + b"abc")
    assert encode_record(record).count(MAGIC_BYTES) == 3  # record header + two splits (labels, payload)
    with IndexedRecordWriter(tmp_path / "m.idx", tmp_path / "m.rec") as w:
        w.write_idx(3, record)
    header, payload = unpack(IndexedRecordReader(tmp_path / "m.idx", tmp_path / "m.rec").read(3))
    assert payload == MAGIC_BYTES + b"abc"
    assert header.label.tobytes()[:4] == MAGIC_BYTES


def test_writer_is_atomic(tmp_path):
    with pytest.raises(RuntimeError):
        with IndexedRecordWriter(tmp_path / "x.idx", tmp_path / "x.rec") as w:
            w.write_idx(0, b"data")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def _read_in_child(reader, key, queue):
    queue.put(reader.read(key))


def test_reader_survives_pickle_and_fork(shared):
    idx, rec, _ = _fixture(shared, "edge")
    reader = IndexedRecordReader(idx, rec)
    want = reader.read(5)  # maps the file in the parent first
    clone = pickle.loads(pickle.dumps(reader))
    assert clone.read(5) == want
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_read_in_child, args=(reader, 5, q))
    p.start()
    got = q.get(timeout=30)
    p.join(30)
    assert got == want and p.exitcode == 0


# ----------------------------------------------------------------------------------------- corrupt input
def _small_rec(tmp_path):
    with IndexedRecordWriter(tmp_path / "s.idx", tmp_path / "s.rec") as w:
        w.write_idx(0, pack(IRHeader(0, 1.0, 0, 0), b"x" * 10))
        w.write_idx(1, pack(IRHeader(0, 2.0, 1, 0), b"y" * 30))
    return tmp_path / "s.idx", tmp_path / "s.rec"


def test_bad_magic_names_file_and_offset(tmp_path):
    idx, rec = _small_rec(tmp_path)
    raw = bytearray(rec.read_bytes())
    second = IndexedRecordReader(idx, rec).offset(1)
    raw[second] ^= 0xFF
    rec.write_bytes(bytes(raw))
    reader = IndexedRecordReader(idx, rec)
    reader.read(0)
    with pytest.raises(FormatError, match=rf"s\.rec.*bad magic.*offset {second}.*key 1"):
        reader.read(1)
    with pytest.raises(FormatError, match=rf"offset {second}"):
        list(RecordReader(rec))


def test_truncated_record(tmp_path):
    idx, rec = _small_rec(tmp_path)
    rec.write_bytes(rec.read_bytes()[:-5])
    second = IndexedRecordReader(idx, rec).offset(1)
    with pytest.raises(FormatError, match=rf"s\.rec: truncated record at offset {second}.*key 1"):
        IndexedRecordReader(idx, rec).read(1)


def test_truncated_split_record(tmp_path):
    data = b"abcd" + MAGIC_BYTES + b"efgh"
    framed = encode_record(data)
    with pytest.raises(FormatError, match="truncated record header at offset 12"):
        decode_record(framed[:16], 0, "f.rec")


def test_idx_offset_past_end(tmp_path):
    idx, rec = _small_rec(tmp_path)
    idx.write_text("0\t0\n1\t99999\n")
    with pytest.raises(FormatError, match=r"s\.idx: key 1 points at offset 99999, past the end"):
        IndexedRecordReader(idx, rec)


@pytest.mark.parametrize("line", ["1 40", "1\tx", "a\t4", "1\t4\t5", "1\t-4"])
def test_malformed_idx_line(tmp_path, line):
    idx, rec = _small_rec(tmp_path)
    idx.write_text(f"0\t0\n{line}\n")
    with pytest.raises(FormatError, match=r"s\.idx: line 2"):
        IndexedRecordReader(idx, rec)


def test_idx_pointing_into_middle_of_split_record(tmp_path):
    data = b"abcd" + MAGIC_BYTES + b"efgh"
    (tmp_path / "c.rec").write_bytes(encode_record(data))
    (tmp_path / "c.idx").write_text("0\t12\n")
    with pytest.raises(FormatError, match="offset 12 starts with continuation flag 3"):
        IndexedRecordReader(tmp_path / "c.idx", tmp_path / "c.rec").read(0)


def test_unpack_short_record():
    with pytest.raises(FormatError, match="shorter than the 24-byte IRHeader"):
        unpack(b"\0" * 10)
    with pytest.raises(FormatError, match="3 labels"):
        unpack(struct.pack("<IfQQ", 3, 0, 0, 0) + b"\0" * 4)
