#!/usr/bin/env bash
# The base image, made without any registry: debootstrap --variant=minbase of Debian bookworm from the mirror apt
# already uses, imported with podman import as localhost/memorycluster-base:bookworm. Made once; REBUILD_BASE=1
# makes it again. On a machine with a registry the Containerfiles build FROM debian:bookworm-slim instead
# (--build-arg BASE=debian:bookworm-slim).
set -euo pipefail
. "$(dirname "$0")/common.sh"
base="localhost/memorycluster-base:bookworm"
found=0
podman image exists "$base" || found=$?
case "$found" in
  0) if [ "${REBUILD_BASE:-0}" != 1 ]; then echo "images: $base exists (REBUILD_BASE=1 makes it again)"; exit 0; fi ;;
  1) ;;
  *) echo "images: podman does not answer (podman image exists exited $found); is it installed (apt-get install podman runc debootstrap)?" >&2; exit 1 ;;
esac
mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)"
mirror="${mirror:-http://deb.debian.org/debian}"
root="$(mktemp -d /tmp/memorycluster-base-XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "images: debootstrap --variant=minbase bookworm from $mirror (a few minutes)"
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
rm -f "$root.log"
# No package caches or lists in the image; apt in a build step fetches lists again.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --quiet --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
echo "images: $base made ($(podman image inspect --format '{{.Size}}' "$base" | numfmt --to=iec))"
