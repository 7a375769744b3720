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
  --cache "${BENCH_CACHE:-$repo/bench/.cache/compute-engine}"
