#!/usr/bin/env bash
# Checks every model and media file listed in models/models.sha256 against its
# recorded sha256. Paths there are relative to the npm directory
# (third_party/npm/node_modules, or the directory given as $1); absolute paths
# are files from Debian packages. Fails loudly, naming each bad or missing file.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
npm_dir="${1:-${VISAGE_NPM_DIR:-$repo/third_party/npm/node_modules}}"
list="$repo/models/models.sha256"

[[ -d "$npm_dir" ]] || { echo "[verify_models] ERROR: npm directory $npm_dir missing: run scripts/install_deps.sh" >&2; exit 1; }
count="$(grep -cvE '^\s*(#|$)' "$list")"
if ! report="$(cd "$npm_dir" && grep -vE '^\s*(#|$)' "$list" | sha256sum --strict -c - 2>&1)"; then
  echo "[verify_models] ERROR: model files do not match models/models.sha256 (in $npm_dir):" >&2
  grep -v ': OK$' <<<"$report" >&2
  exit 1
fi
echo "[verify_models] $count files match models/models.sha256" >&2
