#!/usr/bin/env bash
# make images: the base (operator/images/base.sh), the CLI published self-contained for linux-x64, and three images tagged
# with the version: localhost/memorycluster-operator, -compute (operator/images/Containerfile) and -instance
# (operator/images/Containerfile.instance). The package layers come before the CLI, so a change to our code rebuilds only the
# last layers. Prints each image's size. BASE=debian:bookworm-slim builds from a registry's base instead.
set -euo pipefail
. "$(dirname "$0")/common.sh"
dotnet="${DOTNET:-dotnet}"
base="${BASE:-localhost/memorycluster-base:bookworm}"
[ "$base" = localhost/memorycluster-base:bookworm ] && bash operator/images/base.sh
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || revision="$revision-dirty"
source="$(git config --get remote.origin.url 2>/dev/null || echo "local checkout")"
context="artifacts/image-context"
echo "images: publishing the CLI self-contained for linux-x64"
rm -rf "$context/publish"
mkdir -p "$context"
"$dotnet" publish operator/src/MemoryCluster.Cli/MemoryCluster.Cli.csproj -c Release -r linux-x64 --self-contained \
  --nologo -v quiet -o "$context/publish" 2>&1 | grep -v NU1603 || true
[ -x "$context/publish/memorycluster" ] || { echo "images: the publish made no CLI" >&2; exit 1; }
# Labels on the command line, not LABEL with build arguments in the Containerfiles: podman 4.3's layer cache
# reuses a LABEL step whatever the arguments' values (the compute image got the operator's title).
build() {
  local name="$1" file="$2" description="$3"
  local started=$SECONDS
  podman build --quiet --layers -f "$file" -t "localhost/$name:$version" --build-arg BASE="$base" \
    --label org.opencontainers.image.title="$name" --label org.opencontainers.image.description="$description" \
    --label org.opencontainers.image.version="$version" --label org.opencontainers.image.revision="$revision" \
    --label org.opencontainers.image.source="$source" \
    "$context" >/dev/null
  echo "images: localhost/$name:$version built in $((SECONDS - started)) s, $(podman image inspect --format '{{.Size}}' "localhost/$name:$version" | numfmt --to=si)B"
}
build memorycluster-operator operator/images/Containerfile "The MemoryCluster Kubernetes operator"
build memorycluster-compute operator/images/Containerfile "The MemoryCluster compute service: the knowledge graph and its embeddings in memory"
build memorycluster-instance operator/images/Containerfile.instance "PostgreSQL 15 with the MemoryCluster instance manager"
