"""Protocol definitions: `protocols/<name>.yaml`, one declarative file per protocol.

Each file says where the protocol's files lie under a dataset root (`layout`: role -> relative path),
which reporting rule it uses by default and which others it offers (`rule`), the metric keys its records
carry (`metrics`), and the reference implementation it matches (`reference`: `name`, `where`, `status`
= `exact` | `rule` | `own`). The CLI resolves every input file from `layout` under `--data-root`.

The files are data, read with `yaml.safe_load` and validated strictly: an unknown or missing key, an
absolute or `..` layout path, or a default rule listed among the alternatives is a ConfigError naming
the file and key. `protocol_table()` renders them as the README's protocol table (a test checks the
README against it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from arface_repro.errors import ConfigError

REQUIRED = ("name", "title", "layout", "rule", "metrics", "reference")
OPTIONAL = ("notes",)
RULE_KEYS = ("default", "alternatives")
REFERENCE_KEYS = ("name", "where", "status")
REFERENCE_STATUS = ("exact", "rule", "own")


@dataclass(frozen=True)
class ProtocolSpec:
    name: str
    title: str
    layout: dict[str, str]
    default_rule: str
    alternative_rules: tuple[str, ...]
    metrics: tuple[str, ...]
    reference: dict[str, str]
    notes: str
    path: Path

    @property
    def rules(self) -> tuple[str, ...]:
        return (self.default_rule,) + self.alternative_rules

    def file(self, role: str) -> str:
        """The relative path of `role` under the data root (ConfigError when the layout has no such role)."""
        try:
            return self.layout[role]
        except KeyError:
            raise ConfigError(f"{self.path}: layout has no {role!r} entry") from None


def _fail(path: Path, msg: str):
    raise ConfigError(f"{path}: {msg}")


def _str(path: Path, key: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(path, f"{key} must be a non-empty string, got {value!r}")
    return value.strip()


def parse_spec(path: Path, data) -> ProtocolSpec:
    """Validate one loaded YAML document."""
    if not isinstance(data, dict):
        _fail(path, "expected a mapping at the top level")
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        _fail(path, f"unknown key(s) {unknown}; allowed: {', '.join(REQUIRED + OPTIONAL)}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        _fail(path, f"missing key(s) {missing}")
    name = _str(path, "name", data["name"])
    if name != path.stem:
        _fail(path, f"name {name!r} differs from the file name {path.stem!r}")
    layout = data["layout"]
    if not isinstance(layout, dict):
        _fail(path, "layout must map roles to paths relative to the data root")
    clean = {}
    for role, rel in layout.items():
        rel = _str(path, f"layout.{role}", rel)
        p = PurePosixPath(rel)
        if p.is_absolute() or ".." in p.parts or "\\" in rel or ":" in rel:
            _fail(path, f"layout.{role} = {rel!r} must be a relative '/'-path inside the data root")
        clean[str(role)] = rel
    rule = data["rule"]
    if not isinstance(rule, dict) or set(rule) != set(RULE_KEYS):
        _fail(path, f"rule must have exactly the keys {', '.join(RULE_KEYS)}")
    default = _str(path, "rule.default", rule["default"])
    alts = rule["alternatives"] or []
    if not isinstance(alts, list):
        _fail(path, "rule.alternatives must be a list")
    alts = tuple(_str(path, "rule.alternatives", a) for a in alts)
    if default in alts or len(set(alts)) != len(alts):
        _fail(path, "rule.alternatives must be distinct and must not repeat the default")
    metrics = data["metrics"]
    if not isinstance(metrics, list) or not metrics:
        _fail(path, "metrics must be a non-empty list of record metric keys")
    metrics = tuple(_str(path, "metrics", m) for m in metrics)
    ref = data["reference"]
    if not isinstance(ref, dict) or set(ref) != set(REFERENCE_KEYS):
        _fail(path, f"reference must have exactly the keys {', '.join(REFERENCE_KEYS)}")
    ref = {k: _str(path, f"reference.{k}", ref[k]) for k in REFERENCE_KEYS}
    if ref["status"] not in REFERENCE_STATUS:
        _fail(path, f"reference.status must be one of {', '.join(REFERENCE_STATUS)}, got {ref['status']!r}")
    notes = data.get("notes") or ""
    if not isinstance(notes, str):
        _fail(path, "notes must be text")
    return ProtocolSpec(name, _str(path, "title", data["title"]), clean, default, alts, metrics, ref,
                        " ".join(notes.split()), path)


def specs_dir() -> Path:
    from arface_repro.shared_data import protocols_dir

    return protocols_dir()


@lru_cache(maxsize=None)
def _load_cached(path_str: str, mtime_ns: int) -> ProtocolSpec:
    from arface_repro.utils.textfile import read_yaml

    path = Path(path_str)
    return parse_spec(path, read_yaml(path, "protocol definition"))


def load_spec(name: str) -> ProtocolSpec:
    """The validated `protocols/<name>.yaml`."""
    path = specs_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: protocol definition not found (every protocol has protocols/<name>.yaml)")
    return _load_cached(str(path), path.stat().st_mtime_ns)


def spec_names() -> list[str]:
    """Names of the protocol definitions present (top-level `*.yaml` files)."""
    return sorted(p.stem for p in specs_dir().glob("*.yaml"))


STATUS_TEXT = {"exact": "same numbers", "rule": "same rule", "own": "own definition"}


def protocol_table(names) -> str:
    """The README's protocol table (markdown) for the given protocol names, in that order."""
    lines = ["| protocol | default rule | also offered | metric keys | reference |",
             "|---|---|---|---|---|"]
    for n in names:
        s = load_spec(n)
        ref = f"{s.reference['name']} ({STATUS_TEXT[s.reference['status']]})"
        alts = ", ".join(f"`{a}`" for a in s.alternative_rules) or "–"
        keys = ", ".join(f"`{m}`" for m in s.metrics)
        lines.append(f"| `{s.name}` | `{s.default_rule}` | {alts} | {keys} | {ref} |")
    return "\n".join(lines)
