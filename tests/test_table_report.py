"""The written report of `scripts/reproduce_table.py`: table_NN.md and a self-contained table_NN.html (figures
embedded as data: URIs, each a decodable PNG/SVG), a terminal summary of at most 100 columns with the report's
path, and the HTML rendered by a headless Chromium (skipped where no browser is installed)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import require

from arface_repro.commands.paper import reproduce_table_main
from arface_repro.eval.run import evaluate_store
from arface_repro.io.feature_store import FeatureStore
from arface_repro.io.pairs import parse_lfw_pairs
from arface_repro.io.records import build_record, write_record
from arface_repro.paper import reproduce_table
from arface_repro.paper.manifest import record_path
from arface_repro.paper.report_html import cell_class

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome", "chromium-headless-shell")


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    """`reproduce_table_main` (what `scripts/reproduce_table.py` runs) as `rt.main`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reproduce_table, "DEFAULT_TABLES", tmp_path_factory.mktemp("tables"))
        yield SimpleNamespace(main=reproduce_table_main)


@pytest.fixture(scope="module")
def runs(shared, tmp_path_factory):
    """A runs folder for Table X: the LFW protocol run on 100 pairs of the real pair list with seeded random
    features (a record with a ROC curve), and a BLUFR record."""
    lines = require(shared / "data/lfw/pairs.txt").read_text().splitlines()[1:601]
    d = tmp_path_factory.mktemp("runs")
    pairs = d / "pairs_small.txt"
    body = [ln for k in range(10) for ln in lines[30 * k:30 * k + 5] + lines[300 + 30 * k:300 + 30 * k + 5]]
    pairs.write_text("10\t5\n" + "\n".join(body) + "\n")
    paths = parse_lfw_pairs(pairs).unique_paths()
    rng = np.random.default_rng(0)
    ids = {p.split("/")[0] for p in paths}
    centre = {i: rng.standard_normal(32) for i in sorted(ids)}
    feats = np.stack([centre[p.split("/")[0]] + 1.5 * rng.standard_normal(32) for p in paths]).astype(np.float32)
    rec = evaluate_store("lfw", FeatureStore(feats, paths), pairs=str(pairs))
    write_record(rec, record_path(d, "mfn_plain", "lfw"))
    vr, dir_ = [98.5] * 9 + [98.1], [86.0] * 10
    agg = lambda v: float(np.mean(v) - np.std(v, ddof=1))  # noqa: E731
    write_record(build_record("blufr", "blufr-official", {"VR@FAR=0.1%": agg(vr), "DIR@FAR=1%": agg(dir_)},
                              per_trial={"trial": list(range(1, 11)), "VR@FAR=0.1%": vr, "DIR@FAR=1%": dir_}),
                 record_path(d, "mfn_plain", "blufr"))
    return d


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', page)


def _decodable(uri: str) -> bool:
    import cv2

    m = re.fullmatch(r"data:(image/png|image/svg\+xml);base64,([A-Za-z0-9+/=]+)", uri)
    if not m:
        return False
    raw = base64.b64decode(m.group(2), validate=True)
    if m.group(1) == "image/png":
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
        return img is not None and img.shape[0] > 50 and img.shape[1] > 50
    import xml.etree.ElementTree as ET

    return ET.fromstring(raw).tag.endswith("svg")


def test_report_files_and_compact_summary(rt, runs, tmp_path, capsys):
    tables = tmp_path / "tables"
    assert rt.main(["X", "--no-synthetic", "--runs-dir", str(runs), "--tables-dir", str(tables)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(ln) for ln in lines) <= 100 and len(lines) < 40
    md, page_path = tables / "table_10.md", tables / "table_10.html"
    assert f"report: {md}" in out and str(page_path) in out
    assert "measured cells: " in out and "of 45 reproducible" in out
    # the Markdown: title, every section, figures linked by a relative path that exists
    text = md.read_text()
    assert text.startswith("# Table X: ") and "## Table X - the orderings the paper's table sets up" in text
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links and all((tables / link).is_file() for link in links)
    assert any("roc_lfw" in link for link in links)          # the ROC curve of the measured LFW record
    # the HTML: self-contained, every image an embedded decodable PNG/SVG, statuses coloured
    page = page_path.read_text()
    imgs = _images(page)
    assert len(imgs) == len(links) >= 2 and all(_decodable(u) for u in imgs)
    assert "<table>" in page and 'class="missing"' in page and "file:" not in page and "http" not in page.split("<body>")[1]
    # --wide: the full tables (wider than 100 columns), and the report's path
    assert rt.main(["X", "--no-synthetic", "--wide", "--runs-dir", str(runs), "--tables-dir", str(tables)]) == 0
    wide = capsys.readouterr().out
    assert "what fills the missing cells" in wide and max(len(ln) for ln in wide.splitlines()) > 100
    assert f"report: {md}" in wide


def test_decodable_check_rejects_broken_images():
    assert not _decodable("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n broken").decode())
    assert not _decodable("figure.png")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    assert _decodable("data:image/svg+xml;base64," + base64.b64encode(svg).decode())


def test_cell_colours():
    assert [cell_class(x) for x in ("within ±0.2", "OFF", "missing", "reported", "holds (robust)",
                                    "holds (not significant)", "reversed (robust)", "98.58")] == \
        ["within", "off", "missing", "reported", "holds-robust", "holds", "reversed-robust", ""]


def _browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_report_renders_in_a_headless_browser(rt, runs, tmp_path, capsys):
    browser = _browser()
    if browser is None:
        pytest.skip("no headless browser (chromium / google-chrome) installed: the HTML report is checked without "
                    "one in test_report_files_and_compact_summary")
    tables = tmp_path / "tables"
    assert rt.main(["X", "--no-synthetic", "--quiet", "--runs-dir", str(runs), "--tables-dir", str(tables)]) == 0
    capsys.readouterr()
    page = (tables / "table_10.html").read_text()
    n = len(_images(page))
    # a copy of the page that marks each image, once the page has loaded, with whether it decoded
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", "<script>window.addEventListener('load', () => { for (const i of "
                                  "document.images) { i.setAttribute('data-loaded', (i.complete && i.naturalWidth > 0)"
                                  " ? 'yes' : 'no'); } document.body.setAttribute('data-tables', "
                                  "document.querySelectorAll('table').length); });</script></body>"))
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    loaded = re.findall(r'data-loaded="(yes|no)"', dom)
    assert n >= 1 and loaded == ["yes"] * n
    tables_shown = re.search(r'data-tables="(\d+)"', dom)
    assert tables_shown and int(tables_shown.group(1)) >= 3


def test_report_locations_are_checked_before_any_work(rt, tmp_path, capsys):
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "table_10_figures").write_text("a file where the figures folder goes")
    assert rt.main(["X", "--steps", "2", "--seeds", "0", "--runs-dir", str(tmp_path / "runs"),
                    "--tables-dir", str(tables)]) == 2
    err = capsys.readouterr().err
    assert "table_10_figures: is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()          # refused before training anything
