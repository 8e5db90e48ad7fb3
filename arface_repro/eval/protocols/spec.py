"""Protocol definitions: `protocols/<name>.yaml`, one declarative file per protocol.

Each file says where the protocol's files lie under a dataset root (`layout`: role -> relative path),
which reporting rule it uses by default and which others it offers (`rule`; the `--rule` choices are these),
the metric keys its records carry (`metrics`), and the reference implementation it matches (`reference`:
`name`, `where`, `status` = `exact` | `rule` | `own`). The CLI resolves every input file from `layout`
under `--data-root`. Further keys make the file the one place a protocol's facts live:

* `kind` — the protocol family whose class evaluates it (`pairs`, `blufr`, `ijb-1:1`, `ijb-1:n`, `megaface`,
  `trillion`, `ytf`, `rmfrd`; the registry of `eval/protocols` maps it to the class in its family package, `eval/<family>/protocol.py`). A `pairs` definition
  needs no class of its own: its class is made from the definition.
* `order` — its place in `arface evaluate --help` and `protocol_names()` (distinct integers).
* `format` — `pairs` only: the pair-list format, a name from the fixed parser registry
  `arface_repro.eval.pair_sets.formats` (never an import named by the file).
* `folds` — the fold structure the definition requires: `text` (its words, shown in errors), `count`
  (default 10), and any of `balanced`, `equal_sizes` (booleans) and `size` (pairs per fold).
* `counts` — the protocol's own sizes (the names of `COUNT_KEYS`: `pairs`, `genuine_template_pairs`, ...),
  positive numbers; the paper layer words a printed difference in these units.
* `paper` — how the paper layer evaluates it from a DATA.yaml: `root` (the dataset key `--data-root`
  takes), `files` (`--option: {key: DATASET_KEY, required: BOOL}`: files away from their place under the
  root) and `from_images` (false when the paper layer cannot embed its images itself; `manual` then says
  what the user runs instead).

The files are data, read with `yaml.safe_load` and validated strictly: an unknown or missing key, an
absolute or `..` layout path, or a default rule listed among the alternatives is a ConfigError naming
the file and key. `protocol_table()` renders them as the README's protocol table (a test checks the
README against it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

from arface_repro.errors import ConfigError
from arface_repro.shared_data import protocols_dir
from arface_repro.utils.textfile import read_yaml

REQUIRED = ("name", "title", "kind", "order", "layout", "rule", "metrics", "reference")
OPTIONAL = ("notes", "format", "folds", "counts", "paper")
RULE_KEYS = ("default", "alternatives")
REFERENCE_KEYS = ("name", "where", "status")
REFERENCE_STATUS = ("exact", "rule", "own")
FOLD_KEYS = ("text", "count", "balanced", "equal_sizes", "size")
PAPER_KEYS = ("root", "files", "from_images", "manual")
PAPER_FILE_KEYS = ("key", "required")
# the sizes a definition may state (`counts`), each in the unit the paper layer words a difference in
COUNT_KEYS = {
    "pairs": "pairs of a k-fold pair protocol (all folds)",
    "genuine_pairs": "genuine pairs per trial (BLUFR verification, a mean over the trials)",
    "genuine_probes": "genuine probes per trial (BLUFR open set, a mean over the trials)",
    "impostor_probes": "impostor probes per trial (BLUFR open set, a mean over the trials)",
    "genuine_template_pairs": "genuine template pairs (IJB 1:1)",
    "impostor_template_pairs": "impostor template pairs (IJB 1:1)",
}


@dataclass(frozen=True)
class FoldRule:
    """The fold structure a k-fold definition requires (`io.pairs.check_folds`'s arguments)."""

    text: str
    count: int = 10
    balanced: bool = False
    equal_sizes: bool = False
    size: int | None = None


@dataclass(frozen=True)
class PaperRoute:
    """How the paper layer evaluates the protocol: DATA.yaml keys -> `--data-root` and file options."""

    root: str
    files: tuple[tuple[str, str, bool], ...]   # (option, dataset key, required?)
    from_images: bool
    manual: str

    @property
    def required_keys(self) -> list[str]:
        return [self.root] + [k for _, k, req in self.files if req]

    @property
    def optional_keys(self) -> list[str]:
        return [k for _, k, req in self.files if not req]


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
    kind: str = ""
    order: int = 0
    format: str = ""
    folds: FoldRule | None = None
    counts: dict[str, float] = field(default_factory=dict)
    paper: PaperRoute | None = None

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
    kind = _str(path, "kind", data["kind"])
    order = _int(path, "order", data["order"], lo=0)
    fmt = _str(path, "format", data["format"]) if "format" in data else ""
    if (kind == "pairs") != bool(fmt):
        _fail(path, "format (the pair-list format) is required for kind pairs and only there")
    return ProtocolSpec(name, _str(path, "title", data["title"]), clean, default, alts, metrics, ref,
                        " ".join(notes.split()), path, kind, order, fmt,
                        _folds(path, data["folds"]) if "folds" in data else None,
                        _counts(path, data.get("counts")), _paper(path, data["paper"]) if "paper" in data else None)


def _int(path: Path, key: str, value, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        _fail(path, f"{key} must be an integer >= {lo}, got {value!r}")
    return value


def _bool(path: Path, key: str, value) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"{key} must be true or false, got {value!r}")
    return value


def _mapping(path: Path, key: str, value, allowed, required=()) -> dict:
    if not isinstance(value, dict):
        _fail(path, f"{key} must be a mapping")
    unknown = sorted(set(map(str, value)) - set(allowed))
    if unknown:
        _fail(path, f"{key}: unknown key(s) {unknown}; allowed: {', '.join(allowed)}")
    missing = [k for k in required if k not in value]
    if missing:
        _fail(path, f"{key}: missing key(s) {missing}")
    return value


def _folds(path: Path, value) -> FoldRule:
    d = _mapping(path, "folds", value, FOLD_KEYS, ("text",))
    size = _int(path, "folds.size", d["size"]) if "size" in d else None
    return FoldRule(_str(path, "folds.text", d["text"]), _int(path, "folds.count", d.get("count", 10), lo=2),
                    _bool(path, "folds.balanced", d.get("balanced", False)),
                    _bool(path, "folds.equal_sizes", d.get("equal_sizes", False)), size)


def _counts(path: Path, value) -> dict[str, float]:
    if value is None:
        return {}
    out = {}
    for k, v in _mapping(path, "counts", value, tuple(COUNT_KEYS)).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            _fail(path, f"counts.{k} must be a positive number, got {v!r}")
        out[str(k)] = v
    return out


def _paper(path: Path, value) -> PaperRoute:
    d = _mapping(path, "paper", value, PAPER_KEYS, ("root", "from_images"))
    files = []
    for opt, f in _mapping(path, "paper.files", d.get("files") or {}, [str(k) for k in d.get("files") or {}]).items():
        if not isinstance(opt, str) or not opt.startswith("--"):
            _fail(path, f"paper.files: {opt!r} must be an option name ('--pairs')")
        f = _mapping(path, f"paper.files.{opt}", f, PAPER_FILE_KEYS, PAPER_FILE_KEYS)
        files.append((opt, _str(path, f"paper.files.{opt}.key", f["key"]),
                      _bool(path, f"paper.files.{opt}.required", f["required"])))
    from_images = _bool(path, "paper.from_images", d["from_images"])
    manual = " ".join(str(d.get("manual") or "").split())
    if not from_images and not manual:
        _fail(path, "paper.manual must say what to run instead when paper.from_images is false")
    return PaperRoute(_str(path, "paper.root", d["root"]), tuple(files), from_images, manual)


def specs_dir() -> Path:
    return protocols_dir()


@cache
def _load_cached(path_str: str, mtime_ns: int) -> ProtocolSpec:
    path = Path(path_str)
    return parse_spec(path, read_yaml(path, "protocol definition"))


def load_spec(name: str) -> ProtocolSpec:
    """The validated `protocols/<name>.yaml`."""
    path = specs_dir() / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: protocol definition not found (every protocol has protocols/<name>.yaml)")
    return _load_cached(str(path), path.stat().st_mtime_ns)


def spec_names() -> list[str]:
    """Names of the protocol definitions present (top-level `*.yaml` files), in their `order`."""
    specs = [load_spec(p.stem) for p in sorted(specs_dir().glob("*.yaml"))]
    seen: dict[int, ProtocolSpec] = {}
    for s in specs:
        if s.order in seen:
            raise ConfigError(f"{s.path}: order {s.order} is also {seen[s.order].path.name}'s")
        seen[s.order] = s
    return [s.name for s in sorted(specs, key=lambda s: s.order)]


def specs_of_kind(kind: str) -> list[ProtocolSpec]:
    """The definitions of one family (e.g. every `pairs` set), in their `order`."""
    return [s for s in map(load_spec, spec_names()) if s.kind == kind]


def paper_routes() -> dict[str, PaperRoute]:
    """protocol -> how the paper layer evaluates it, for every definition with a `paper` section."""
    return {s.name: s.paper for s in map(load_spec, spec_names()) if s.paper is not None}


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
