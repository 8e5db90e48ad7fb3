"""Each protocol family is one package of `arface_repro.eval` (reader, metric, protocol class together), found
by the registry without a list: `eval.protocols.family_packages` finds every subpackage with a `protocol`
module, and every definition's `kind` is registered by one of them. The family readers stay numpy-only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import arface_repro.eval
from arface_repro.eval.protocols import family_packages, get_protocol, protocol_kinds, protocol_names
from arface_repro.eval.protocols.spec import load_spec

EVAL = Path(arface_repro.eval.__file__).parent
# Each family's file reader (the format of its own files); generic formats live in arface_repro.io.
FAMILY_READERS = ("arface_repro.eval.ijb.meta", "arface_repro.eval.trillion.reader", "arface_repro.eval.blufr.config",
                  "arface_repro.eval.megaface.devkit", "arface_repro.eval.pair_sets.formats", "arface_repro.eval.ytf.splits")


def test_discovery_finds_every_family_package_on_disk():
    on_disk = sorted(f"arface_repro.eval.{p.parent.name}" for p in EVAL.glob("*/protocol.py"))
    assert on_disk and family_packages() == on_disk
    assert not (EVAL / "protocols" / "protocol.py").exists()


def test_every_definition_kind_is_registered_by_its_family_package():
    kinds = set(protocol_kinds())
    for name in protocol_names():
        spec = load_spec(name)
        assert spec.kind in kinds
        module = get_protocol(name).__module__
        assert module.startswith("arface_repro.eval.") and module.endswith(".protocol"), (name, module)
        assert module.rsplit(".", 1)[0] in family_packages()


def test_a_new_family_package_is_found_without_a_list(tmp_path, monkeypatch):
    pkg = tmp_path / "zz_new_family"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "protocol.py").write_text("raise AssertionError('discovery must not import it')\n")
    (tmp_path / "zz_not_a_family").mkdir()
    (tmp_path / "zz_not_a_family" / "__init__.py").write_text("")
    monkeypatch.setattr(arface_repro.eval, "__path__", [*arface_repro.eval.__path__, str(tmp_path)])
    try:
        found = family_packages()
    finally:
        for m in ("arface_repro.eval.zz_new_family", "arface_repro.eval.zz_not_a_family"):
            sys.modules.pop(m, None)
    assert "arface_repro.eval.zz_new_family" in found
    assert "arface_repro.eval.zz_not_a_family" not in found


@pytest.mark.parametrize("module", FAMILY_READERS)
def test_family_reader_imports_neither_torch_nor_cv2(module):
    code = (f"import sys, importlib; importlib.import_module({module!r}); "
            "bad = [m for m in ('torch', 'torchvision', 'cv2') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{module} imports {r.stdout.strip()} {r.stderr[-500:]}"
