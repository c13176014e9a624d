#!/usr/bin/env bash
# The player page's vendored JavaScript (see crates/vidi-api/assets/player/VENDOR.md):
#   scripts/vendor-player.sh            fetches each file from npm at its pinned version and
#                                       checks it against its pinned sha256 and the repository's
#   scripts/vendor-player.sh --check    only checks the files in the repository
#   scripts/vendor-player.sh --update   writes the fetched files into the repository and prints
#                                       their sums (after changing a version below)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-fetch}

# package@version | file inside the package | file in the repository | sha256
files=(
  "media-chrome@4.19.4|package/dist/iife/all.js|crates/vidi-api/assets/player/media-chrome-4.19.4.min.js|d17dbfb1b43466bd37438408e7dc4f9d54eff9769ae859b71c71f16723c86305"
  "hls.js@1.5.20|package/dist/hls.min.js|crates/vidi-api/assets/hls.min.js|d016c1230496ee59f3f5b01c16cce4cc01b5a1d3d357adec200c908b131ebe49"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for entry in "${files[@]}"; do
  IFS='|' read -r pkg inner repo sum <<<"$entry"
  have=$(sha256sum "$repo" | cut -d' ' -f1)
  if [ "$mode" = "--check" ]; then
    if [ "$have" = "$sum" ]; then echo "ok       $repo"; else echo "MISMATCH $repo: $have, pinned $sum" >&2; status=1; fi
    continue
  fi
  dir="$tmp/${pkg//[@\/]/_}"; mkdir -p "$dir"
  tarball=$(cd "$dir" && npm pack --silent "$pkg")
  tar -xzf "$dir/$tarball" -C "$dir" "$inner"
  got=$(sha256sum "$dir/$inner" | cut -d' ' -f1)
  if [ "$mode" = "--update" ]; then
    cp "$dir/$inner" "$repo"
    echo "$repo <- $pkg $inner: sha256 $got"
  elif [ "$got" != "$sum" ]; then
    echo "MISMATCH $pkg $inner: npm gives $got, pinned $sum" >&2; status=1
  elif [ "$have" != "$sum" ]; then
    echo "MISMATCH $repo: $have, npm and the pin give $sum" >&2; status=1
  else
    echo "ok       $repo = $pkg $inner"
  fi
done
exit $status
