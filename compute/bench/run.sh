#!/usr/bin/env bash
# Compute engine benchmark, the body of `make bench-engine`.
#   compute/bench/run.sh                      Fashion-MNIST + WordNet (Debian packages dataset-fashion-mnist, wordnet-base)
#   VECTORS=DIR compute/bench/run.sh          DIR holds train.f32, test.f32 and optionally gt.i32
#   GRAPH=FILE.tsv compute/bench/run.sh       subject<TAB>predicate<TAB>object per line
# Optional: BENCH_SECTIONS=ann,graph,fusion  BENCH_CACHE=DIR  PG_BIN=/usr/lib/postgresql/15/bin
# Progress goes to stderr; the last line on stdout is the JSON summary.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# The default data sets come from Debian's packages; install them when missing (and not replaced by VECTORS/GRAPH).
need=()
[ -z "${VECTORS:-}" ] && ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1 && need+=(dataset-fashion-mnist)
[ -z "${GRAPH:-}" ] && ! dpkg -s wordnet-base >/dev/null 2>&1 && need+=(wordnet-base)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench-engine: installing ${need[*]} from Debian's packages" >&2
  sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

# The peer (hnswlib-node) is installed here, into compute/bench/peer/node_modules (gitignored).
if ! (cd "$here/peer" && node -e "require('hnswlib-node')" >/dev/null 2>&1); then
  echo "bench-engine: installing hnswlib-node (npm, node-gyp build)" >&2
  (cd "$here/peer" && npm install --no-audit --no-fund >&2)
fi

dotnet build -c Release --nologo -v q "$here/MemoryCluster.Compute.Bench/MemoryCluster.Compute.Bench.csproj" >&2

exec dotnet "$here/MemoryCluster.Compute.Bench/bin/Release/net10.0/MemoryCluster.Compute.Bench.dll" \
  --peer "$here/peer" \
  --vectors "${VECTORS:-}" \
  --graph "${GRAPH:-}" \
  --sections "${BENCH_SECTIONS:-ann,graph,fusion}" \
  --pg-bin "${PG_BIN:-/usr/lib/postgresql/15/bin}" \
  --cache "${BENCH_CACHE:-$repo/artifacts/cache/compute-engine}"
