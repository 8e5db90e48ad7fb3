"""utils.cpus: usable CPUs and the L2 size read from a sysfs-like folder."""

from __future__ import annotations

from arface_repro.utils.cpus import l2_cache_bytes, usable_cpus


def _cache_dir(tmp_path, entries):
    for i, (level, size) in enumerate(entries):
        d = tmp_path / f"index{i}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "size").write_text(f"{size}\n")
    return tmp_path


def test_l2_size_is_read_from_the_level_2_entry(tmp_path):
    root = _cache_dir(tmp_path, [(1, "32K"), (1, "32K"), (2, "1024K"), (3, "32768K")])
    assert l2_cache_bytes(root=root) == 1 << 20


def test_l2_size_falls_back_on_absent_or_odd_entries(tmp_path):
    assert l2_cache_bytes(default=123, root=tmp_path / "absent") == 123
    assert l2_cache_bytes(default=123, root=_cache_dir(tmp_path / "odd", [(2, "lots")])) == 123
    assert l2_cache_bytes(default=123, root=_cache_dir(tmp_path / "zero", [(2, "0K")])) == 123
    assert l2_cache_bytes(default=123, root=_cache_dir(tmp_path / "m", [(1, "48K"), (2, "2M")])) == 2 << 20


def test_usable_cpus_is_positive_and_capped():
    assert usable_cpus() >= 1 and usable_cpus(limit=1) == 1
