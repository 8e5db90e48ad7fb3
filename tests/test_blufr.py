import numpy as np
import pytest
from conftest import require

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.eval.blufr import metric as blufr
from arface_repro.eval.blufr.config import load_blufr_config, match_image_list
from arface_repro.eval.kfold import l2_normalize


@pytest.fixture(scope="module")
def config(shared):
    return load_blufr_config(require(shared / "data/blufr/blufr_lfw_config.mat"))


def test_config_parse(config):
    assert len(config.image_list) == 13233 and config.n_trials == 10
    assert config.image_list[0] == "Aaron_Eckhart_0001.jpg"
    assert config.labels.min() == 1 and config.labels.max() == 5749
    for t in range(10):
        assert len(config.gal_index[t]) == 1000
        assert np.isin(config.gal_index[t], config.test_index[t]).all()
        assert np.isin(config.prob_index[t], config.test_index[t]).all()
        assert len(np.intersect1d(config.train_index[t], config.test_index[t])) == 0
    assert len(config.test_index[0]) == 10281  # "Set 1: Test #img = 10281" in the toolkit's info file


def test_golden(config):
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((5750, 64))
    x = centers[config.labels] + 0.9 * rng.standard_normal((13233, 64))
    x = np.round(x, 2)
    res = blufr.evaluate_blufr(x, config)
    assert res.metrics["VR@FAR=0.1%"] == pytest.approx(96.028622, abs=1e-6)
    assert res.metrics["DIR@FAR=1%"] == pytest.approx(74.426202, abs=1e-6)
    assert len(res.per_trial["VR@FAR=0.1%"]) == 10
    assert res.vr.shape == (10, 74) and res.dir.shape == (10, 19, 38)


def test_grids():
    assert len(blufr.VERIFY_FARS) == 74 and blufr.VERIFY_FARS[0] == 0 and blufr.VERIFY_FARS[-1] == 1
    assert len(blufr.OSI_FARS) == 38
    assert blufr.RANKS.tolist() == list(range(1, 11)) + list(range(20, 101, 10))


def test_matlab_round_is_half_away_from_zero():
    np.testing.assert_array_equal(blufr.matlab_round([0.5, 1.5, 2.5, 2.4999, 3.5]), [1, 2, 3, 2, 4])


@pytest.mark.parametrize("seed,dim,spread", [(0, 16, 1.5), (1, 32, 0.7), (2, 8, 3.0)])
def test_fast_path_equals_full_sort_reference(seed, dim, spread):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 300, 2500)
    centres = rng.standard_normal((300, dim))
    x = l2_normalize(centres[labels] + spread * rng.standard_normal((2500, dim)))
    x[7] = x[3]  # duplicated image: exact ties
    vr_ref, far_ref, thr_ref = blufr.eval_roc_reference(x @ x.T, labels)
    vr, far, thr = blufr.eval_roc(x, labels, block=700)
    np.testing.assert_array_equal(far, far_ref)
    np.testing.assert_allclose(thr, thr_ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(vr, vr_ref)


def test_open_set_stable_rank_and_special_thresholds():
    # gallery: classes 1, 2, 3 ; probes: two genuine (class 1, 2) and two impostors (class 9, 8)
    score = np.array([[0.9, 0.5, 0.3, 0.2],
                      [0.9, 0.6, 0.1, 0.4],
                      [0.2, 0.6, 0.2, 0.1]])
    gal = np.array([1, 2, 3])
    prob = np.array([1, 2, 9, 8])
    dir_, far, thr = blufr.open_set_roc(score, gal, prob, far_points=np.array([0.0, 0.5, 1.0]), rank_points=np.array([1, 2]))
    # impostor detection scores: 0.3, 0.4 -> descending [0.4, 0.3]
    # probe 0: mated 0.9 tied with gallery 1 (0.9); stable sort keeps gallery 0 first -> rank 1
    # probe 1: mated 0.6 tied with gallery 2 (0.6); mated entry (gallery 1) comes first -> rank 1
    # FAR 0: no genuine above? genuine scores 0.9, 0.6 > 0.4 -> threshold (0.4 + 0.6) / 2 = 0.5
    assert thr[0] == pytest.approx(0.5)
    assert thr[1] == pytest.approx(0.4)          # k = 1
    assert thr[2] == pytest.approx(0.3 - blufr.SQRT_EPS)
    np.testing.assert_allclose(dir_[0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(far, [0.0, 0.5, 1.0])


def test_image_list_matching():
    names = ["A_0001.jpg", "B_0001.jpg"]
    idx = match_image_list(names, ["B/B_0001.jpg", "x/A_0001.jpg", "C/C_0001.jpg"])
    assert idx.tolist() == [1, 0]
    with pytest.raises(MissingDataError, match="1 of 2 BLUFR images are missing, e.g. B_0001.jpg"):
        match_image_list(names, ["A/A_0001.jpg"])
    with pytest.raises(FormatError, match="match several stored paths"):
        match_image_list(names, ["A/A_0001.jpg", "other/A_0001.jpg", "B/B_0001.jpg"])


def test_bad_config(tmp_path):
    import scipy.io

    f = tmp_path / "cfg.mat"
    scipy.io.savemat(f, {"imageList": np.array([["a.jpg"]], dtype=object), "labels": np.array([[1]])})
    with pytest.raises(FormatError, match="cfg.mat: BLUFR config lacks variable"):
        load_blufr_config(f)
    (tmp_path / "junk.mat").write_bytes(b"junk")
    with pytest.raises(FormatError, match="junk.mat: not a readable MATLAB"):
        load_blufr_config(tmp_path / "junk.mat")


def test_worker_processes_do_not_change_results(config):
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((5750, 24))
    x = centres[config.labels] + 1.0 * rng.standard_normal((13233, 24))
    one = blufr.evaluate_blufr(x, config, trials=[0, 3], workers=1)
    two = blufr.evaluate_blufr(x, config, trials=[0, 3], workers=2)
    np.testing.assert_array_equal(one.vr, two.vr)
    np.testing.assert_array_equal(one.dir, two.dir)
    assert one.metrics == two.metrics and one.per_trial["trial"] == [1, 4]


def test_many_sets_in_one_pass_and_in_groups():
    """34 test sets (more than the 32 membership bits of one pass) give each set's own EvalROC result."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 60, 600)
    x = l2_normalize(rng.standard_normal((60, 12))[labels] + 1.2 * rng.standard_normal((600, 12)))
    gram = blufr.QuantizedGram(x)
    sets = [np.sort(rng.choice(600, int(rng.integers(150, 400)), replace=False)) for _ in range(34)]
    got = blufr.eval_roc_sets(gram, sets, labels)
    assert len(got) == 34
    for s, (vr, far, thr) in zip(sets, got):
        vr_ref, far_ref, thr_ref = blufr.eval_roc_reference(x[s] @ x[s].T, labels[s])
        np.testing.assert_array_equal(far, far_ref)
        np.testing.assert_allclose(thr, thr_ref, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(vr, vr_ref)
