#!/usr/bin/env bash
# Lint counts for the record: ruff and mypy findings overall, under the
# configured rule set, and per file of the transitional ignores (files being
# rewritten on other branches) as they would be without those ignores.
#
#   tools/lint_report.sh          the work tree
#   tools/lint_report.sh REV      the tree of commit REV, checked with this
#                                 tree's pyproject.toml (e.g. the count before)
#
# Needs the lint extra: pip install -e '.[test,lint]'.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${VENV_BIN:-$root/.venv/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

src=$root
if [ $# -gt 0 ]; then
    src=$tmp/tree
    mkdir -p "$src"
    git -C "$root" archive "$1" | tar -x -C "$src"
    cp "$root/pyproject.toml" "$src/pyproject.toml"
fi
cd "$src"

# The transitional blocks, and the files they name.
sed '/# BEGIN transitional/,/# END transitional/d' pyproject.toml > "$tmp/pyproject.toml"
"$bin/python" - pyproject.toml > "$tmp/plain_ignores" 3> "$tmp/files" <<'PY'
import os, sys, tomllib
lint = tomllib.load(open(sys.argv[1], "rb"))["tool"]["ruff"]["lint"]
kept = {k: v for k, v in lint.get("per-file-ignores", {}).items() if v != ["ALL"]}
print("lint.per-file-ignores = {" + ", ".join(f'"{k}" = {v!r}'.replace("'", '"') for k, v in kept.items()) + "}")
with os.fdopen(3, "w") as files:
    files.write("\n".join(k for k, v in lint.get("per-file-ignores", {}).items() if v == ["ALL"]) + "\n")
PY

"$bin/ruff" check . --output-format concise --no-cache -q > "$tmp/ruff" 2>&1
"$bin/ruff" check . --output-format concise --no-cache -q --config "$(cat "$tmp/plain_ignores")" > "$tmp/ruff_all" 2>&1
"$bin/mypy" --no-incremental > "$tmp/mypy" 2>&1
"$bin/mypy" --no-incremental --config-file "$tmp/pyproject.toml" > "$tmp/mypy_all" 2>&1

count() { grep -c "$2" "$1" || true; }
echo "ruff findings (configured):                  $(count "$tmp/ruff" ': [A-Z]\+[0-9]\+ ')"
echo "ruff findings (no transitional ignores):     $(count "$tmp/ruff_all" ': [A-Z]\+[0-9]\+ ')"
echo "mypy errors (configured):                    $(count "$tmp/mypy" ': error: ')"
echo "mypy errors (no transitional ignores):       $(count "$tmp/mypy_all" ': error: ')"
echo
printf '%-34s %6s %6s\n' "transitional file" ruff mypy
while read -r pattern; do
    [ -n "$pattern" ] || continue
    prefix=${pattern%\*\*}
    printf '%-34s %6s %6s\n' "$pattern" \
        "$(grep -c "^${prefix}" "$tmp/ruff_all" || true)" \
        "$(grep ': error: ' "$tmp/mypy_all" | grep -c "^${prefix}" || true)"
done < "$tmp/files"
