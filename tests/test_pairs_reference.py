"""Pair protocols against a structural copy of insightface's `verification.py` (test, evaluate, calculate_roc,
calculate_accuracy, LFold): from the same flip/no-flip network outputs, the same fold accuracies, mean and std."""

from __future__ import annotations

import numpy as np
import sklearn.preprocessing
from sklearn.model_selection import KFold

from arface_repro.eval.kfold import contiguous_folds
from arface_repro.eval.pair_sets.verification import evaluate_pairs
from arface_repro.io.feature_store import FeatureStore
from arface_repro.io.pairs import PairList


class LFold:
    def __init__(self, n_splits=2, shuffle=False):
        self.n_splits = n_splits
        if self.n_splits > 1:
            self.k_fold = KFold(n_splits=n_splits, shuffle=shuffle)

    def split(self, indices):
        if self.n_splits > 1:
            return self.k_fold.split(indices)
        return [(indices, indices)]


def calculate_accuracy(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict_issame, actual_issame))
    fp = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    tn = np.sum(np.logical_and(np.logical_not(predict_issame), np.logical_not(actual_issame)))
    fn = np.sum(np.logical_and(np.logical_not(predict_issame), actual_issame))
    tpr = 0 if (tp + fn == 0) else float(tp) / float(tp + fn)
    fpr = 0 if (fp + tn == 0) else float(fp) / float(fp + tn)
    acc = float(tp + tn) / dist.size
    return tpr, fpr, acc


def calculate_roc(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10):
    nrof_pairs = min(len(actual_issame), embeddings1.shape[0])
    nrof_thresholds = len(thresholds)
    k_fold = LFold(n_splits=nrof_folds, shuffle=False)
    accuracy = np.zeros(nrof_folds)
    best = np.zeros(nrof_folds)
    indices = np.arange(nrof_pairs)
    diff = np.subtract(embeddings1, embeddings2)
    dist = np.sum(np.square(diff), 1)
    for fold_idx, (train_set, test_set) in enumerate(k_fold.split(indices)):
        acc_train = np.zeros(nrof_thresholds)
        for threshold_idx, threshold in enumerate(thresholds):
            _, _, acc_train[threshold_idx] = calculate_accuracy(threshold, dist[train_set], actual_issame[train_set])
        best_threshold_index = np.argmax(acc_train)
        _, _, accuracy[fold_idx] = calculate_accuracy(thresholds[best_threshold_index], dist[test_set],
                                                      actual_issame[test_set])
        best[fold_idx] = thresholds[best_threshold_index]
    return accuracy, best


def reference_test(embeddings_list, issame_list, nrof_folds=10):
    """The flip-add branch of insightface's `test()` (acc2, std2)."""
    embeddings = embeddings_list[0] + embeddings_list[1]
    embeddings = sklearn.preprocessing.normalize(embeddings)
    thresholds = np.arange(0, 4, 0.01)
    accuracy, best = calculate_roc(thresholds, embeddings[0::2], embeddings[1::2], np.asarray(issame_list), nrof_folds)
    return accuracy, best, np.mean(accuracy), np.std(accuracy)


def test_insightface_verification_equals_the_reference():
    rng = np.random.default_rng(7)
    n = 1200
    issame = rng.random(n) < 0.5
    a = rng.standard_normal((n, 64)).astype(np.float32) * 5
    b = np.where(issame[:, None], a + 9.0 * rng.standard_normal((n, 64)), 5 * rng.standard_normal((n, 64))).astype(np.float32)
    f = np.empty((2 * n, 64), np.float32)
    f[0::2], f[1::2] = a, b                          # the .bin order: a0, b0, a1, b1, ...
    g = (f + 0.7 * rng.standard_normal(f.shape)).astype(np.float32)  # outputs of the flipped images
    accuracy, best, mean, std = reference_test([f, g], issame)
    names = np.array([f"bin/{i:06d}" for i in range(2 * n)])
    store = FeatureStore(f, names, g)
    pairs = PairList(names[0::2], names[1::2], issame, contiguous_folds(n), "<pairs>")
    out = evaluate_pairs(store, pairs, flip="add")
    assert out["per_fold"]["Acc"] == (accuracy * 100).tolist()
    assert out["per_fold"]["threshold"] == best.tolist()
    assert out["metrics"]["Acc"] == mean * 100 and out["metrics"]["Acc.std"] == std * 100
    assert 0.6 < mean < 0.99
