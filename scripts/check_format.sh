#!/usr/bin/env bash
# Checks (default) or applies (--fix) clang-format on the C++ sources in
# include/ src/ tools/ tests/ bench/, with the repository's .clang-format.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
fix=0
[[ "${1:-}" == "--fix" ]] && fix=1
command -v clang-format >/dev/null 2>&1 || { echo "[check_format] clang-format missing: run scripts/install_deps.sh" >&2; exit 1; }

dirs=(include src tools tests bench)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and new files, never ignored ones (build trees, third_party/npm).
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "${dirs[@]}" |
                       grep -E '\.(cpp|hpp|h|cc|cu|cuh)$' | while read -r f; do [[ -f "$f" ]] && echo "$f"; done)
else
  mapfile -t files < <(find "${dirs[@]}" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc' \
                       -o -name '*.cu' -o -name '*.cuh' \) 2>/dev/null | sort)
fi
((${#files[@]})) || { echo "[check_format] no C++ files found" >&2; exit 1; }

if ((fix)); then
  clang-format -i "${files[@]}"
  echo "[check_format] formatted ${#files[@]} files" >&2
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "[check_format] the files above are not clang-formatted: run 'make format'" >&2
  exit 1
fi
echo "[check_format] ${#files[@]} files clang-formatted ($(clang-format --version | grep -o 'version [0-9.]*'))" >&2
