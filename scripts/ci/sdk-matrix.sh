#!/usr/bin/env bash
# Run the transport and end-to-end tests against the lowest mcp our range allows and the newest
# mcp 2.x on the index, each in a venv of its own, so that an SDK release that changes what we
# rely on fails here and not on a user's machine (issue 14 item 15). The main suite keeps running
# against whatever `pip install -e .` resolves in .venv.
#
#   bash scripts/ci/sdk-matrix.sh            # called from .ci/run
#   SDK_MATRIX_TESTS="tests/e2e" bash scripts/ci/sdk-matrix.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
TESTS=${SDK_MATRIX_TESTS:-tests/e2e tests/transport/test_stdio.py tests/server/test_http_security.py tests/server/test_token_matrix.py}
PIP=(--quiet --disable-pip-version-check)

# The lowest version pyproject allows: the lower bound of the mcp requirement, as x.y.z.
lowest=$("$PY" - <<'PYEOF'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
spec = next(d for d in deps if re.match(r"mcp\s*[<>=!~]", d))
low = re.search(r">=\s*([0-9][0-9.]*)", spec).group(1)
parts = low.split(".") + ["0"] * (3 - len(low.split(".")))
print(".".join(parts[:3]))
PYEOF
)
major=${lowest%%.*}

work=$(mktemp -d "${TMPDIR:-/tmp}/rivya-sdk-matrix.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The newest release of the same major on the index (pip's own query; no other registry call).
"$PY" -m venv "$work/probe"
"$work/probe/bin/python" -m pip index versions mcp --disable-pip-version-check 2>/dev/null >"$work/versions" || true
newest=$("$PY" - "$major" "$work/versions" <<'PYEOF'
import re, sys
major, path = sys.argv[1], sys.argv[2]
text = open(path).read()
found = re.search(r"Available versions:\s*(.+)", text)
versions = [v.strip() for v in found.group(1).split(",")] if found else []
final = [v for v in versions if re.fullmatch(r"\d+\.\d+\.\d+", v) and v.split(".")[0] == major]
final.sort(key=lambda v: tuple(int(p) for p in v.split(".")))
print(final[-1] if final else "")
PYEOF
)
if [ -z "$newest" ]; then
  echo "sdk-matrix: could not list mcp versions on the package index" >&2
  exit 1
fi

echo "sdk-matrix: lowest allowed mcp $lowest, newest $major.x available $newest"

run_pass() {
  local label=$1 version=$2 venv="$work/venv-$2"
  if [ ! -x "$venv/bin/python" ]; then
    "$PY" -m venv "$venv"
    "$venv/bin/python" -m pip install "${PIP[@]}" -e '.[test]' "mcp==$version"
  fi
  local got
  got=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))')
  if [ "$got" != "$version" ]; then
    echo "sdk-matrix: wanted mcp $version, the venv has $got" >&2
    return 1
  fi
  echo "sdk-matrix: $label pass, mcp $got: $TESTS"
  # shellcheck disable=SC2086  # TESTS is a list of paths
  "$venv/bin/python" -m pytest -q $TESTS
}

if [ "$lowest" = "$newest" ]; then
  # One release is both bounds today: one pass checks both (a second would repeat it exactly).
  echo "sdk-matrix: the newest $major.x equals the lowest allowed ($lowest); one pass covers both"
  run_pass "lowest = newest" "$lowest"
else
  run_pass lowest "$lowest"
  run_pass newest "$newest"
fi
echo "sdk-matrix: green on mcp $lowest and mcp $newest"
