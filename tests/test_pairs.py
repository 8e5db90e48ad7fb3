import pickle

import numpy as np
import pytest
from conftest import require

from arface_repro.data.image_decoding import decode_bin_images
from arface_repro.errors import FormatError, MissingDataError
from arface_repro.eval.pair_sets.verification import load_pair_protocol
from arface_repro.io.insightface_bin import bin_pairs, load_bin
from arface_repro.io.pairs import (
    parse_calfw_pairs,
    parse_cfp_pairs,
    parse_cplfw_pairs,
    parse_label_pairs,
    parse_lfw_pairs,
)


def test_real_lfw_pairs(shared):
    p = parse_lfw_pairs(require(shared / "data/lfw/pairs.txt"))
    assert len(p) == 6000 and p.n_folds == 10
    for f in range(10):
        sel = p.fold == f
        assert sel.sum() == 600
        assert p.issame[sel][:300].all() and not p.issame[sel][300:].any()
    assert p.path_a[0] == "Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert p.path_b[0] == "Abel_Pacheco/Abel_Pacheco_0004.jpg"
    assert len(p.unique_paths()) == 7701
    p.check_images(shared / "data/lfw/aligned-112x96")


def test_real_lfw_dev_pairs(shared):
    p = parse_lfw_pairs(require(shared / "data/lfw/pairsDevTest.txt"))
    assert len(p) == 1000 and p.n_folds == 1 and p.issame.sum() == 500


def test_lfw_bad_lines_name_file_and_line(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("1\t2\nA\t1\t2\nB\t1\nC\t1\tD\t2\nE\t1\tF\t2\n")
    with pytest.raises(FormatError, match=r"pairs.txt:3: expected a matched pair"):
        parse_lfw_pairs(f)
    f.write_text("1\t2\nA\t1\t2\n")
    with pytest.raises(FormatError, match="promises 1 fold"):
        parse_lfw_pairs(f)
    f.write_text("1\t1\nA\tx\t2\nC\t1\tD\t2\n")
    with pytest.raises(FormatError, match=r":2: expected an integer image number"):
        parse_lfw_pairs(f)
    with pytest.raises(MissingDataError, match="not found"):
        parse_lfw_pairs(tmp_path / "absent.txt")


def test_missing_image_names_the_pair(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("1\t1\nA\t1\t2\nA\t1\tB\t1\n")
    (tmp_path / "A").mkdir()
    for n in (1, 2):
        (tmp_path / "A" / f"A_{n:04d}.jpg").write_bytes(b"x")
    p = parse_lfw_pairs(f)
    with pytest.raises(MissingDataError, match=r"pair 2 \(A/A_0001.jpg, B/B_0001.jpg\)"):
        p.check_images(tmp_path)


def _two_line_file(path, pos_tokens, neg_token, n_per_side):
    lines = []
    for i in range(n_per_side):
        t = pos_tokens(i)
        lines += [f"p{i}a.jpg {t}", f"p{i}b.jpg {t}"]
    for i in range(n_per_side):
        lines += [f"n{i}a.jpg {neg_token}", f"n{i}b.jpg {neg_token}"]
    path.write_text("\n".join(lines) + "\n")


def test_calfw_and_cplfw_facex_folds(tmp_path):
    f = tmp_path / "pairs_CALFW.txt"
    _two_line_file(f, lambda i: i // 30 + 1, 0, 300)
    p = parse_calfw_pairs(f, image_dir="aligned")
    assert len(p) == 600 and p.n_folds == 10 and p.path_a[0] == "aligned/p0a.jpg"
    assert (p.fold[:300] == np.arange(300) // 30).all() and (p.fold[300:] == np.arange(300) // 30).all()
    g = tmp_path / "pairs_CPLFW.txt"
    _two_line_file(g, lambda i: 1, 0, 300)
    q = parse_cplfw_pairs(g)
    assert q.issame.sum() == 300 and q.fold[299] == 9 and q.fold[300] == 0
    g.write_text("a.jpg 1\nb.jpg 0\n")
    with pytest.raises(FormatError, match="pairs_CPLFW.txt:1: expected matching labels"):
        parse_cplfw_pairs(g)
    g.write_text("a.jpg 1\n")
    with pytest.raises(FormatError, match="two lines each"):
        parse_cplfw_pairs(g)


def test_cfp_split_layout(tmp_path):
    proto = tmp_path / "Protocol"
    (proto / "Split").mkdir(parents=True)
    (proto / "Pair_list_F.txt").write_text("\n".join(f"{i} ../Data/Images/{i:03d}/frontal/01.jpg" for i in range(1, 21)))
    (proto / "Pair_list_P.txt").write_text("\n".join(f"{i} ../Data/Images/{i:03d}/profile/01.jpg" for i in range(1, 21)))
    for which in ("FF", "FP"):
        for f in range(1, 11):
            d = proto / "Split" / which / f"{f:02d}"
            d.mkdir(parents=True)
            (d / "same.txt").write_text(f"{f},{f}\n")
            (d / "diff.txt").write_text(f"{f},{f + 10}\n")
    p = parse_cfp_pairs(tmp_path, "FP")
    assert len(p) == 20 and p.n_folds == 10
    assert p.path_a[0] == "Data/Images/001/frontal/01.jpg" and p.path_b[0] == "Data/Images/001/profile/01.jpg"
    assert load_pair_protocol("cfp-ff", data_root=tmp_path).path_b[1] == "Data/Images/011/frontal/01.jpg"
    (proto / "Split/FP/03/diff.txt").write_text("3;13\n")
    with pytest.raises(FormatError, match=r"FP/03/diff.txt:1: expected 'i,j'"):
        parse_cfp_pairs(tmp_path, "FP")


def test_agedb_label_list(tmp_path):
    f = tmp_path / "agedb_30_pair.txt"
    f.write_text("".join(f"a{i}.jpg b{i}.jpg {1 if i % 2 else -1}\n" for i in range(1200)))
    p = parse_label_pairs(f, 600)
    assert p.n_folds == 2 and p.issame.sum() == 600
    f.write_text("a.jpg b.jpg 2\n")
    with pytest.raises(FormatError, match=r":1: label must be"):
        parse_label_pairs(f, 1)


def test_small_lfw_bin(shared):
    path = require(shared / "data/insightface/small_lfw.bin")
    images, issame = load_bin(path)
    assert len(images) == 20 and issame.all() and len(issame) == 10
    names, decoded = decode_bin_images(path)
    assert len(decoded) == 20 and all(im.shape == (112, 112, 3) and im.dtype == np.uint8 for im in decoded)
    pl = bin_pairs(path)
    assert pl.path_a[1] == names[2] and pl.path_b[1] == names[3] and pl.n_folds == 10


def test_bad_bin_files(tmp_path):
    f = tmp_path / "bad.bin"
    f.write_bytes(b"not a pickle")
    with pytest.raises(FormatError, match="bad.bin: not an insightface .bin"):
        load_bin(f)
    f.write_bytes(pickle.dumps(([b"x", b"y", b"z"], [True, False])))
    with pytest.raises(FormatError, match="3 images for 2 pairs"):
        load_bin(f)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    f.write_bytes(pickle.dumps((Evil(), [True])))
    with pytest.raises(FormatError, match="forbidden"):
        load_bin(f)
