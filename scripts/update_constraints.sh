#!/usr/bin/env bash
# Regenerate constraints.txt: the exact versions of the active environment, recorded after the README's test
# command passed in it. Run from an activated venv made with the README's install line:
#
#   bash scripts/update_constraints.sh            # runs `pytest`, then writes constraints.txt if it passed
#   bash scripts/update_constraints.sh --no-test  # writes it now (you just ran the suite in this venv)
#
# The package itself (editable or not) and pip/setuptools/wheel are left out: the file constrains the
# dependencies only. The file is written beside itself and renamed, so a failed run leaves the old one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" != "--no-test" ]]; then
    if [[ $# -gt 0 ]]; then
        echo "usage: bash scripts/update_constraints.sh [--no-test]" >&2
        exit 2
    fi
    pytest
fi
tmp="$(mktemp constraints.txt.XXXXXX)"
trap 'rm -f "$tmp"' EXIT
{
    echo "# The exact versions the test suite passed with; regenerate with: bash scripts/update_constraints.sh"
    echo "# python $(python -c 'import platform; print(platform.python_version(), platform.system(), platform.machine())')"
    python -m pip freeze --exclude-editable --disable-pip-version-check \
        | grep -v -i -E '^(arface[-_]repro)([ =@]|$)' \
        | grep -v -E '^(#|-e )' \
        | LC_ALL=C sort -f
} >"$tmp"
if ! grep -q -i '^numpy==' "$tmp"; then
    echo "update_constraints: 'pip freeze' in $(command -v python) lists no numpy: not the project's venv" >&2
    exit 2
fi
mv "$tmp" constraints.txt
trap - EXIT
echo "wrote constraints.txt ($(grep -c -v '^#' constraints.txt) packages)"
echo "torch $(grep -i '^torch==' constraints.txt | cut -d= -f3), torchvision $(grep -i '^torchvision==' constraints.txt | cut -d= -f3):" \
     "the README's CPU-only install line must name these versions (tests/test_packaging.py checks it)"
