"""Packaging: the metadata is in setup.cfg; this file only maps the top-level `protocols/` folder (protocol
specs, model presets, the paper's tables) into the package as `arface_repro/protocols`, so an installed
copy (`pip install .`, a wheel) carries it. A checkout keeps `protocols/` where it is; see
`arface_repro.shared_data.protocols_dir` for how both layouts are found."""

import os

from setuptools import find_packages, setup

# every folder under protocols/ (new ones included) becomes arface_repro.protocols[.sub] with its data files
PROTOCOL_DIRS = {
    "arface_repro." + dirpath.replace(os.sep, "."): dirpath.replace(os.sep, "/")
    for dirpath, dirnames, _ in os.walk("protocols")
    if not os.path.basename(dirpath).startswith((".", "__"))
}

setup(
    packages=find_packages(include=["arface_repro", "arface_repro.*"]) + sorted(PROTOCOL_DIRS),
    package_dir=PROTOCOL_DIRS,
    package_data={p: ["*.yaml", "*.yml", "*.md", "*.txt", "*.json"] for p in PROTOCOL_DIRS},
)
