#!/usr/bin/env bash
# Builds a release of Vidi: one archive a self-hoster can install from (docs/operations.md,
# "Installing" and "Releasing").
#
#   scripts/release.sh                 # from a clean tree; the version comes from the tag or Cargo.toml
#   scripts/release.sh --allow-dirty   # a try-out build from a tree with uncommitted changes
#
# Produces dist/vidi-<version>-<target>.tar.gz (the binary, the systemd units, the container
# recipe, an example configuration, the README and docs/) and dist/SHA256SUMS.
#
# The version: when HEAD carries a tag `vX.Y.Z` (or `X.Y.Z`), that, and it must equal the
# workspace version in Cargo.toml (a tag that disagrees with the binary's `--version` would ship
# a lie); otherwise Cargo.toml's version with `-g<short hash>` appended, so an untagged build can
# never pass for a release.
set -euo pipefail
cd "$(dirname "$0")/.."

allow_dirty=0
for arg in "$@"; do
  case "$arg" in
    --allow-dirty) allow_dirty=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "release.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

# A release must be rebuildable from its commit: uncommitted changes would be in the binary but
# in no commit.
if [ -n "$(git status --porcelain --untracked-files=normal)" ]; then
  if [ "$allow_dirty" = 1 ]; then
    echo "release.sh: the tree has uncommitted changes; building anyway (--allow-dirty)" >&2
    dirty=1
  else
    echo "release.sh: the tree has uncommitted changes (git status); commit them or pass --allow-dirty" >&2
    exit 1
  fi
else
  dirty=0
fi

# The workspace version: the first `version = "…"` under [workspace.package].
cargo_version=$(awk '
  /^\[workspace\.package\]/ { in_pkg = 1; next }
  /^\[/ { in_pkg = 0 }
  in_pkg && /^version *=/ { gsub(/.*= *"|".*/, ""); print; exit }
' Cargo.toml)
[ -n "$cargo_version" ] || { echo "release.sh: no version under [workspace.package] in Cargo.toml" >&2; exit 1; }

tag=$(git tag --points-at HEAD | grep -E '^v?[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true)
if [ -n "$tag" ]; then
  version=${tag#v}
  if [ "$version" != "$cargo_version" ]; then
    echo "release.sh: tag $tag says $version but Cargo.toml says $cargo_version; make them agree" >&2
    exit 1
  fi
else
  version="$cargo_version-g$(git rev-parse --short=9 HEAD)"
fi
[ "$dirty" = 1 ] && version="$version-dirty"

target=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$target" ] || { echo "release.sh: cannot tell the target from rustc -vV" >&2; exit 1; }

echo "release.sh: building vidi $version for $target" >&2
# --locked: the release uses exactly the dependencies Cargo.lock names (what the tests ran with).
cargo build --release --locked -p vidi
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="${target_dir:-target}/release/vidi"
[ -x "$bin" ] || { echo "release.sh: $bin was not built" >&2; exit 1; }

name="vidi-$version-$target"
mkdir -p dist
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
install -d "$root/deploy" "$root/docs"
install -m 0755 "$bin" "$root/vidi"
install -m 0644 deploy/vidi.service deploy/vidi-worker.service deploy/Containerfile \
  deploy/vidi.toml.example "$root/deploy/"
install -m 0644 README.md "$root/"
install -m 0644 docs/*.md "$root/docs/"
# Which commit this is, for a bug report: the binary says its version, this says its source.
{
  echo "version: $version"
  echo "commit: $(git rev-parse HEAD)"
  echo "target: $target"
  echo "rustc: $(rustc -V)"
} > "$root/BUILD"

# Reproducible-ish archive: sorted names, fixed owner, the commit's time as every file's time.
mtime=$(git log -1 --format=%cI HEAD)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" \
  -C "$stage" -czf "dist/$name.tar.gz" "$name"

# SHA256SUMS covers every archive in dist/ (several targets may be built into one folder).
(cd dist && sha256sum -- *.tar.gz > SHA256SUMS)
echo "dist/$name.tar.gz"
echo "dist/SHA256SUMS"
