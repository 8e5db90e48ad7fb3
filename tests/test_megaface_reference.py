"""MegaFace identification against a structural copy of FaceX-Zoo's `CommonMegaFaceEvaluator`.

FaceX-Zoo's evaluator (test_protocol/megaface/megaface_evaluator.py, its Python port of the devkit) scores
the full FaceScrub × MegaFace matrix with `np.dot`, takes the N-th largest distractor score per probe with
`np.argpartition`, and counts an ordered (gallery i, probe j) pair as a rank-N success when
`intra_score[i][j] >= rankN score of probe j`. The copy below keeps its loops and numpy calls (its file
loading is replaced by arrays). It takes features as they are; FaceX-Zoo expects them L2-normalised, so
it is given the normalised features the package scores.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from arface_repro.cli import main
from arface_repro.eval.chunked import l2n
from arface_repro.eval.megaface import devkit as dk
from arface_repro.eval.megaface import metric as mf
from arface_repro.io.feature_store import save_feature_store


class RefCommonMegaFaceEvaluator:
    def __init__(self, facescrub_id_list, facescrub_feature_list, megaface_feature_list):
        self.facescrub_id_list = facescrub_id_list
        self.facescrub_feature_list = facescrub_feature_list
        self.megaface_feature_list = megaface_feature_list
        self.facescrub_id2index_list = {}
        for index, facescrub_id in enumerate(self.facescrub_id_list):
            if facescrub_id not in self.facescrub_id2index_list:
                self.facescrub_id2index_list[facescrub_id] = []
            self.facescrub_id2index_list[facescrub_id].append(index)
        self.facescrub_id2feature_list = self.get_facescrub_id2feature_list()
        self.facescrub_id2intra_score = {}
        for facescrub_id, feature_list in self.facescrub_id2feature_list.items():
            self.facescrub_id2intra_score[facescrub_id] = np.dot(feature_list, feature_list.T)
        self.facescrub_megaface_score = np.dot(self.facescrub_feature_list, self.megaface_feature_list.T)

    def argNmax(self, score_mat, N, axis=None):
        if axis is None:
            return np.argpartition(score_mat.ravel(), -N)[-N]
        return np.take(np.argpartition(score_mat, -N, axis=axis), -N, axis=axis)

    def get_facescrub_id2feature_list(self):
        facescrub_id2feature_list = {}
        for facescrub_id, cur_feature in zip(self.facescrub_id_list, self.facescrub_feature_list):
            if facescrub_id not in facescrub_id2feature_list:
                facescrub_id2feature_list[facescrub_id] = []
            facescrub_id2feature_list[facescrub_id].append(cur_feature)
        return {k: np.array(v) for k, v in facescrub_id2feature_list.items()}

    def get_rankN_accuracy(self, cur_rank):
        facescrub_rankN_galley_index = self.argNmax(self.facescrub_megaface_score, cur_rank, axis=1)
        facescrub_rankN_gallery_score = []
        for index in range(len(self.facescrub_id_list)):
            rankN_index = facescrub_rankN_galley_index[index]
            facescrub_rankN_gallery_score.append(self.facescrub_megaface_score[index][rankN_index])
        count_all = 0
        TP = 0
        for facescrub_id, intra_score in self.facescrub_id2intra_score.items():
            M, _ = intra_score.shape
            for image_index in range(M):
                for facescrub_index in range(M):
                    if facescrub_index == image_index:
                        continue
                    cur_positive_score = intra_score[image_index][facescrub_index]
                    cur_facescrub_global_index = self.facescrub_id2index_list[facescrub_id][facescrub_index]
                    cur_megaface_rankN_score = facescrub_rankN_gallery_score[cur_facescrub_global_index]
                    if cur_positive_score >= cur_megaface_rankN_score:
                        TP += 1
                    count_all += 1
        return TP / count_all


@pytest.fixture(scope="module")
def megaface_root(tmp_path_factory):
    d = tmp_path_factory.mktemp("megaface")
    rng = np.random.default_rng(5)
    n_ids, dim, n_dis = 40, 32, 3000
    ids = np.sort(np.concatenate([np.repeat(np.arange(n_ids), 2), rng.integers(0, n_ids, 170)]))
    centres = rng.standard_normal((n_ids, dim)).astype(np.float32)
    fs = (centres[ids] + 1.1 * rng.standard_normal((ids.size, dim)).astype(np.float32)) * 3
    dis = rng.standard_normal((n_dis, dim)).astype(np.float32)
    dis[[7, 1500, 2999]] = fs[[0, 50, 100]]  # distractors duplicating probe images: exact ties
    names = [f"Id{i:02d}" for i in ids]
    fs_paths = [f"{n}/{n}_{k}.png" for k, n in enumerate(names)]
    mf_paths = [f"{k // 100:03d}/u{k}@N00/{k}_0.jpg" for k in range(n_dis)]
    lists = d / "devkit" / "templatelists"
    lists.mkdir(parents=True)
    dk.write_facescrub_list(lists / "facescrub_features_list.json", names, fs_paths)
    dk.write_megaface_list(lists / "megaface_features_list.json_1000000_1", mf_paths)
    save_feature_store(d / "facescrub.npz", fs, fs_paths)
    save_feature_store(d / "megaface.npz", dis, mf_paths)
    return d, names, fs, dis


@pytest.mark.parametrize("sizes", [(3000,), (10, 100, 3000)])
def test_cmc_equals_facex_zoo(megaface_root, tmp_path, sizes):
    d, names, fs, dis = megaface_root
    out = tmp_path / "rec.json"
    assert main(["evaluate", "--protocol", "megaface", "--features", str(d / "facescrub.npz"), "--distractor-features",
                 str(d / "megaface.npz"), "--data-root", str(d), "--noise-rule", "none", "--sizes",
                 ",".join(map(str, sizes)), "--max-memory-gb", "0.0005", "--out", str(out), "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert rec["rule"] == "facex-zoo"
    pf, dn = l2n(fs), l2n(dis)  # FaceX-Zoo scores the (normalised) features as given
    for size in sizes:
        ref = RefCommonMegaFaceEvaluator(names, pf, dn[:size])  # one FaceX-Zoo run per distractor list
        cmc = [100 * ref.get_rankN_accuracy(r) for r in range(1, 11)]
        assert rec["cmc"][mf.size_key(size)] == cmc, size
    assert 0 < rec["cmc"]["3000"][0] < rec["cmc"]["3000"][9] < 100


def test_duplicated_distractors_tie_exactly_and_count_for_the_probe(megaface_root):
    """The duplicates give exact ties, which the two rules count differently."""
    d, names, fs, dis = megaface_root
    pf, dn = l2n(fs), l2n(dis)
    ref = RefCommonMegaFaceEvaluator(names, pf, dn)
    m = np.flatnonzero(np.asarray(names) == names[0])
    intra = ref.facescrub_id2intra_score[names[0]]
    assert any(intra[0][j] in ref.facescrub_megaface_score[m[j]] for j in range(1, m.size))  # an exact tie
    a = mf.evaluate(fs, names, dis, noise_rule="none", sets={3000: np.arange(3000)})
    b = mf.evaluate(fs, names, dis, noise_rule="none", sets={3000: np.arange(3000)}, rule="ties-against")
    assert a["cmc"][3000][0] > b["cmc"][3000][0]
