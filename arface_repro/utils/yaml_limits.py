"""YAML parsed with bounds on nesting and on alias expansion, for every YAML file the package reads.

`yaml.safe_load` constructs only plain data, but it neither bounds nesting (a deeply nested document ends
in a RecursionError inside the composer) nor alias expansion: a 1 KB "billion laughs" document whose
anchors refer to anchors expands to ~10^9 nodes and runs for minutes into gigabytes. `load_bounded` first
streams the parser's events (no recursion, no construction) and refuses more than MAX_DEPTH levels of
nesting and more than MAX_ALIASES alias uses; it then composes the node graph (aliases stay shared
references there) and counts the nodes the document would have with every alias expanded, refusing more
than MAX_NODES and refusing an alias that refers to a node containing it (a recursive structure); only then
are Python objects constructed. Errors are `yaml.YAMLError` subclasses carrying one line of text, so the
callers' existing "not valid YAML" handling names the file.
"""

from __future__ import annotations

import yaml

MAX_DEPTH = 64            # nesting of sequences and mappings; the package's own files use fewer than 10
MAX_ALIASES = 10_000      # alias uses (`*name`, `<<: *name`) in one document
MAX_NODES = 1_000_000     # nodes after expanding every alias; the largest shipped file has a few thousand


class YAMLLimitError(yaml.YAMLError):
    """The document exceeds a bound (nesting, alias uses, expanded size, a recursive alias)."""


def _check_events(text: str, loader: type) -> None:
    depth = aliases = 0
    for ev in yaml.parse(text, Loader=loader):
        if isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = ev.start_mark.line + 1 if ev.start_mark else "?"
                raise YAMLLimitError(f"line {line}: nested more than {MAX_DEPTH} levels deep")
        elif isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        elif isinstance(ev, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                line = ev.start_mark.line + 1 if ev.start_mark else "?"
                raise YAMLLimitError(f"line {line}: more than {MAX_ALIASES} aliases")


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [x for kv in node.value for x in kv]
    return []


def expanded_size(root) -> int:
    """Nodes under `root` with every alias expanded (shared nodes counted once per use), computed on the
    composed graph without expanding it; YAMLLimitError above MAX_NODES or for a recursive alias."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(size[id(c)] for c in _children(node))
            if total > MAX_NODES:
                line = node.start_mark.line + 1 if node.start_mark else "?"
                raise YAMLLimitError(f"line {line}: expands to more than {MAX_NODES:,} nodes through aliases")
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            line = node.start_mark.line + 1 if node.start_mark else "?"
            raise YAMLLimitError(f"line {line}: an alias refers to a node that contains it (a recursive document)")
        on_path.add(key)
        stack.append((node, True))
        for c in _children(node):
            if id(c) in on_path:
                line = c.start_mark.line + 1 if c.start_mark else "?"
                raise YAMLLimitError(f"line {line}: an alias refers to a node that contains it (a recursive document)")
            if id(c) not in size:
                stack.append((c, False))
    return size.get(id(root), 0)


def load_bounded(text: str, loader: type = yaml.SafeLoader):
    """The single document of `text` constructed by `loader` (a SafeLoader subclass), within the bounds above."""
    _check_events(text, loader)
    ldr = loader(text)
    try:
        node = ldr.get_single_node()
        if node is None:
            return None
        expanded_size(node)
        return ldr.construct_document(node)
    finally:
        ldr.dispose()
