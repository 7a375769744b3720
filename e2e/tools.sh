#!/usr/bin/env bash
# Installs the host programs some e2e scenarios need, from Debian's packages, when they are missing:
# nft (nftables) for lagging-replica-fork and primary-cut-from-standbys, stress-ng for cpu-stress.
# Run as root (as the suite itself is); prints what it installs and nothing when all is there.
set -euo pipefail

missing=()
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
command -v stress-ng >/dev/null 2>&1 || missing+=(stress-ng)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "e2e: missing ${missing[*]}; install as root: apt-get install ${missing[*]}" >&2
  exit 0
fi

echo "e2e: installing ${missing[*]} from Debian's packages"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
