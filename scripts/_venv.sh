# Sourced by scripts/*: create .venv on first use and install ccnp2p with its extras.
# torch is pinned to 2.13.0 (the CPU build this machine ships); never let pip pick another.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.ccnp2p-installed"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
# Reinstall when pyproject.toml changes.
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e "$ROOT[ml,test,sim]"
    touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
