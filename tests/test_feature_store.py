import numpy as np
import pytest

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.io.feature_store import FeatureStore, load_feature_store, save_feature_store


def test_round_trip_and_lookup(tmp_path):
    f = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    paths = ["a/1.jpg", "a/2.jpg", "./b/1.jpg", "b\\2.jpg"]
    out = save_feature_store(tmp_path / "s.npz", f, paths, flip_features=f * 2, model="onnx:x")
    s = load_feature_store(out)
    assert s.paths.tolist() == ["a/1.jpg", "a/2.jpg", "b/1.jpg", "b/2.jpg"]
    np.testing.assert_array_equal(s.features, f)
    np.testing.assert_array_equal(s.combined("add"), f * 3)
    assert s.combined("concat").shape == (4, 6)
    assert s.meta["model"] == "onnx:x"
    assert s.indices(["b/2.jpg", "a/1.jpg"]).tolist() == [3, 0]
    with pytest.raises(MissingDataError, match=r"s.npz: 1 image\(s\) the protocol needs are not in the feature store: c/1.jpg"):
        s.indices(["a/1.jpg", "c/1.jpg"])
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("mutate,message", [
    (lambda f, p: (f, p[:-1]), "3 paths for 4 feature rows"),
    (lambda f, p: (f, [p[0], p[0], p[2], p[3]]), "duplicate path"),
    (lambda f, p: (np.where(np.arange(4)[:, None] == 2, np.nan, f), p), "non-finite .* row for c.jpg"),
    (lambda f, p: (np.where(np.arange(4)[:, None] == 1, 0.0, f), p), "all-zero features row for b.jpg"),
    (lambda f, p: (f[:, 0], p), "must be 2-D"),
    (lambda f, p: (f, ["/abs/a.jpg"] + p[1:]), "is absolute"),
])
def test_bad_stores_are_rejected(tmp_path, mutate, message):
    f = np.ones((4, 3), np.float32)
    p = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    f2, p2 = mutate(f, p)
    np.savez(tmp_path / "bad.npz", features=f2, paths=np.array(p2))
    with pytest.raises(FormatError, match=message):
        load_feature_store(tmp_path / "bad.npz")


def test_missing_keys_and_files(tmp_path):
    np.savez(tmp_path / "x.npz", feats=np.ones((2, 2)))
    with pytest.raises(FormatError, match="x.npz: a feature store needs arrays 'features' and 'paths'"):
        load_feature_store(tmp_path / "x.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(FormatError, match="junk.npz: not a readable .npz"):
        load_feature_store(tmp_path / "junk.npz")
    with pytest.raises(MissingDataError, match="not found"):
        load_feature_store(tmp_path / "absent.npz")
    with pytest.raises(FormatError, match="flip_features"):
        FeatureStore(np.ones((2, 2)), ["a", "b"], flip_features=np.ones((3, 2)))
