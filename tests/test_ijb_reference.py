"""IJB-C 1:1 and 1:N against structural copies of insightface's `ijb_11.py` and `ijb_1n.py`.

The copies below follow the reference scripts statement by statement (image2template_feature,
verification, the TPR@FPR table; the 1:N evaluation): the same dtypes, the same loops, the same numpy
calls. From the same image features, `arface evaluate --protocol ijbc` must give the same template
features and pair scores bit for bit, and the same TAR table digit for digit.
"""

from __future__ import annotations

import heapq
import json
import math

import numpy as np
import pytest
import sklearn.preprocessing
from sklearn.metrics import roc_curve

from arface_repro.cli import main
from arface_repro.eval import large_scale_synthetic as synth
from arface_repro.eval.ijb import meta as ijb_meta
from arface_repro.eval.ijb import metric as ijb
from arface_repro.eval.ijb import one_to_n as ijb_1n
from arface_repro.io.feature_store import load_feature_store

X_LABELS = [10 ** -6, 10 ** -5, 10 ** -4, 10 ** -3, 10 ** -2, 10 ** -1]


# ------------------------------------------------------------------ structural copy of ijb_11.py

def ref_image2template_feature(img_feats=None, templates=None, medias=None):
    unique_templates = np.unique(templates)
    template_feats = np.zeros((len(unique_templates), img_feats.shape[1]))
    for count_template, uqt in enumerate(unique_templates):
        (ind_t,) = np.where(templates == uqt)
        face_norm_feats = img_feats[ind_t]
        face_medias = medias[ind_t]
        unique_medias, unique_media_counts = np.unique(face_medias, return_counts=True)
        media_norm_feats = []
        for u, ct in zip(unique_medias, unique_media_counts):
            (ind_m,) = np.where(face_medias == u)
            if ct == 1:
                media_norm_feats += [face_norm_feats[ind_m]]
            else:
                media_norm_feats += [np.mean(face_norm_feats[ind_m], axis=0, keepdims=True)]
        media_norm_feats = np.array(media_norm_feats)
        template_feats[count_template] = np.sum(media_norm_feats, axis=0)
    template_norm_feats = sklearn.preprocessing.normalize(template_feats)
    return template_norm_feats, unique_templates


def ref_verification(template_norm_feats=None, unique_templates=None, p1=None, p2=None):
    template2id = np.zeros((max(unique_templates) + 1, 1), dtype=int)
    for count_template, uqt in enumerate(unique_templates):
        template2id[uqt] = count_template
    score = np.zeros((len(p1),))
    total_pairs = np.array(range(len(p1)))
    batchsize = 100000
    sublists = [total_pairs[i:i + batchsize] for i in range(0, len(p1), batchsize)]
    for c, s in enumerate(sublists):  # noqa: B007 - structural copy of insightface's loop
        feat1 = template_norm_feats[template2id[p1[s]]]
        feat2 = template_norm_feats[template2id[p2[s]]]
        similarity_score = np.sum(feat1 * feat2, -1)
        score[s] = similarity_score.flatten()
    return score


def ref_table_row(label, score):
    fpr, tpr, _ = roc_curve(label, score)
    fpr = np.flipud(fpr)
    tpr = np.flipud(tpr)
    row = []
    for fpr_iter in np.arange(len(X_LABELS)):
        _, min_index = min(list(zip(abs(fpr - X_LABELS[fpr_iter]), range(len(fpr)))))
        row.append(tpr[min_index])
    return row


def ref_ijb_11(img_feats, faceness_scores, templates, medias, p1, p2, label):
    """The script's steps 3-5 with use_flip_test, use_norm_score and use_detector_score all True."""
    img_input_feats = img_feats[:, 0:img_feats.shape[1] // 2] + img_feats[:, img_feats.shape[1] // 2:]
    img_input_feats = img_input_feats * faceness_scores[:, np.newaxis]
    template_norm_feats, unique_templates = ref_image2template_feature(img_input_feats, templates, medias)
    score = ref_verification(template_norm_feats, unique_templates, p1, p2)
    return template_norm_feats, score, ref_table_row(label, score)


# ------------------------------------------------------------------ structural copy of ijb_1n.py

def ref_image2template_feature_1n(img_feats=None, templates=None, medias=None, choose_templates=None, choose_ids=None):
    unique_templates, indices = np.unique(choose_templates, return_index=True)
    unique_subjectids = choose_ids[indices]
    template_feats = np.zeros((len(unique_templates), img_feats.shape[1]))
    for count_template, uqt in enumerate(unique_templates):
        (ind_t,) = np.where(templates == uqt)
        face_norm_feats = img_feats[ind_t]
        face_medias = medias[ind_t]
        unique_medias, unique_media_counts = np.unique(face_medias, return_counts=True)
        media_norm_feats = []
        for u, ct in zip(unique_medias, unique_media_counts):
            (ind_m,) = np.where(face_medias == u)
            if ct == 1:
                media_norm_feats += [face_norm_feats[ind_m]]
            else:
                media_norm_feats += [np.mean(face_norm_feats[ind_m], 0, keepdims=True)]
        media_norm_feats = np.array(media_norm_feats)
        template_feats[count_template] = np.sum(media_norm_feats, 0)
    template_norm_feats = template_feats / np.sqrt(np.sum(template_feats ** 2, -1, keepdims=True))
    return template_norm_feats, unique_templates, unique_subjectids


def ref_evaluation(query_feats, gallery_feats, mask):
    Fars = [0.01, 0.1]
    query_num = query_feats.shape[0]
    similarity = np.dot(query_feats, gallery_feats.T)
    top_inds = np.argsort(-similarity)
    out = {}
    for k in (1, 5, 10):
        correct_num = 0
        for i in range(query_num):
            if mask[i] in top_inds[i, 0:k]:
                correct_num += 1
        out[f"Rank-{k}"] = correct_num / query_num
    required_topk = [math.ceil(query_num * x) for x in Fars]
    top_sims = similarity
    pos_sims = []
    for i in range(query_num):
        gt = mask[i]
        pos_sims.append(top_sims[i, gt])
        top_sims[i, gt] = -2.0
    pos_sims = np.array(pos_sims)
    neg_sims = top_sims[np.where(top_sims > -2.0)]
    neg_sims = heapq.nlargest(max(required_topk), neg_sims)
    for far, pos in zip(Fars, required_topk):
        th = neg_sims[pos - 1]
        out[f"TPIR@FPIR=1e{round(math.log10(far))}"] = np.sum(pos_sims > th) / query_num
    return out


def ref_gen_mask(query_ids, reg_ids):
    mask = []
    for query_id in query_ids:
        pos = [i for i, x in enumerate(reg_ids) if query_id == x]
        if len(pos) != 1:
            raise RuntimeError("RegIdsError")
        mask.append(pos[0])
    return mask


# ------------------------------------------------------------------ tests

@pytest.fixture(scope="module")
def ijbc(tmp_path_factory):
    d = tmp_path_factory.mktemp("ijbc")
    sz = {k: max(4, int(v * 0.003)) for k, v in synth.IJBC.items()}
    data = synth.synth_ijb(**sz, seed=8)
    f, g = synth.ijb_features(data, 64, seed=9, sigma=6.0)
    synth.write_ijb(d, data, f, g, "ijbc")
    meta = ijb_meta.load_ijb_meta(d / "meta", "ijbc")
    # what the reference reads: the network's concatenated outputs (float32) and the faceness column
    img_feats = np.concatenate([f, g], axis=1).astype(np.float32)
    return d, data, meta, img_feats


def test_ijb_11_scores_and_table_equal_the_reference(ijbc, tmp_path):
    d, data, meta, img_feats = ijbc
    faceness = meta.faceness.astype(np.float32)
    assert np.unique(meta.medias, return_counts=True)[1].max() > 3  # media means over several images are exercised
    ref_tf, ref_score, ref_row = ref_ijb_11(img_feats, faceness, meta.templates, meta.medias, meta.t1, meta.t2,
                                            meta.labels.astype(int))
    store = load_feature_store(d / "ijbc_features.npz")
    tids, tf = ijb.template_features(store.features, store.flip_features, meta.faceness, meta.templates, meta.medias,
                                     max_memory_gb=1e-4, rows=ijb.store_rows(store, meta.images))
    np.testing.assert_array_equal(tf, ref_tf)  # template features bit for bit (several memory chunks)
    res = ijb.evaluate_11(store, meta)
    np.testing.assert_array_equal(res["scores"], ref_score)  # pair scores bit for bit
    out = tmp_path / "rec.json"
    assert main(["evaluate", "--protocol", "ijbc", "--features", str(d / "ijbc_features.npz"), "--data-root", str(d),
                 "--out", str(out), "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert rec["rule"] == "nearest"
    assert list(rec["metrics"].values()) == [tpr * 100 for tpr in ref_row]  # digit for digit
    assert [f"{v:.2f}" for v in rec["metrics"].values()] == [f"{t * 100:.2f}" for t in ref_row]
    assert 0 < ref_row[3] < 1  # a non-trivial operating point


def test_float32_scores_would_not_be_exact(ijbc):
    """Why the float64 path matters: float32 template features move scores by ~1e-7."""
    d, data, meta, img_feats = ijbc
    faceness = meta.faceness.astype(np.float32)
    ref_tf, ref_score, _ = ref_ijb_11(img_feats, faceness, meta.templates, meta.medias, meta.t1, meta.t2,
                                      meta.labels.astype(int))
    tf32 = ref_tf.astype(np.float32)
    pos = {t: i for i, t in enumerate(np.unique(meta.templates))}
    i1 = np.array([pos[t] for t in meta.t1])
    i2 = np.array([pos[t] for t in meta.t2])
    s32 = np.einsum("ij,ij->i", tf32[i1], tf32[i2])
    assert np.abs(s32 - ref_score).max() > 1e-9


def test_ijb_1n_insightface_rule_equals_the_reference(ijbc, tmp_path):
    d, data, meta, img_feats = ijbc
    faceness = meta.faceness.astype(np.float32)
    gal, probes, _ = ijb_1n.load_1n_lists(d / "meta", "ijbc")
    # the script: F2 (add), N1, D1 via np.matlib.repmat (= broadcasting), then the 1:N template features
    x = img_feats[:, 0:int(img_feats.shape[1] / 2)] + img_feats[:, int(img_feats.shape[1] / 2):]
    x = x * np.tile(faceness[:, np.newaxis], (1, x.shape[1]))
    g_t = np.concatenate([gal["G1"][0], gal["G2"][0]])
    g_s = np.concatenate([gal["G1"][1], gal["G2"][1]])
    g_feats, _, g_ids = ref_image2template_feature_1n(x, meta.templates, meta.medias, g_t, g_s)
    p_feats, p_tids, p_ids = ref_image2template_feature_1n(x, meta.templates, meta.medias, probes[0], probes[1])
    ref = ref_evaluation(p_feats, g_feats, ref_gen_mask(p_ids, g_ids))
    # template features bit for bit
    store = load_feature_store(d / "ijbc_features.npz")
    rows = ijb.store_rows(store, meta.images)
    tids, tf = ijb.template_features(store.features, store.flip_features, meta.faceness, meta.templates, meta.medias,
                                     rows=rows, norm="sum")
    np.testing.assert_array_equal(tf[np.searchsorted(tids, p_tids)], p_feats)
    out = tmp_path / "rec.json"
    assert main(["evaluate", "--protocol", "ijbc-1n", "--features", str(d / "ijbc_features.npz"), "--data-root",
                 str(d), "--out", str(out), "--quiet"]) == 0
    rec = json.loads(out.read_text())
    assert rec["rule"] == "insightface"
    assert rec["metrics"] == {k: 100.0 * v for k, v in ref.items()}
    assert 0 < ref["Rank-1"] < 1 and 0 < ref["TPIR@FPIR=1e-2"] < 1
