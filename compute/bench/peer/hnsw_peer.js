// Peer HNSW for the compute engine benchmark: hnswlib-node on the same files and parameters.
// Usage: node hnsw_peer.js TRAIN.f32 TEST.f32 GT.i32 M EF_CONSTRUCTION K EF1,EF2,... [SPACE]
// Vector files: uint32 count, uint32 dim, count*dim float32 LE; gt.i32: uint32 count, uint32 k,
// count*k int32 ids, nearest first. Prints one JSON object on stdout.
'use strict';
const fs = require('fs');
const { HierarchicalNSW } = require('hnswlib-node');

function readMatrix(file, ctor) {
  const buf = fs.readFileSync(file);
  const count = buf.readUInt32LE(0);
  const dim = buf.readUInt32LE(4);
  const copy = new Uint8Array(count * dim * 4);
  copy.set(buf.subarray(8, 8 + count * dim * 4));
  return { count, dim, data: new ctor(copy.buffer) };
}

function rows(m) {
  const out = new Array(m.count);
  for (let i = 0; i < m.count; i++) out[i] = Array.from(m.data.subarray(i * m.dim, (i + 1) * m.dim));
  return out;
}

const [trainPath, testPath, gtPath, mArg, efcArg, kArg, efsArg, spaceArg] = process.argv.slice(2);
const M = Number(mArg), efC = Number(efcArg), k = Number(kArg);
const efs = efsArg.split(',').map(Number);
const space = spaceArg || 'l2';
const train = readMatrix(trainPath, Float32Array);
const test = readMatrix(testPath, Float32Array);
const gt = readMatrix(gtPath, Int32Array);
const trainRows = rows(train);
const queries = rows(test);

const index = new HierarchicalNSW(space, train.dim);
index.initIndex(train.count, M, efC, 100);
let t0 = process.hrtime.bigint();
for (let i = 0; i < train.count; i++) index.addPoint(trainRows[i], i);
const buildS = Number(process.hrtime.bigint() - t0) / 1e9;

// Warm up for two seconds, then time each ef over whole passes until a second has gone by
// (recall from the first pass), as the C# side does.
let warm = process.hrtime.bigint();
for (let pass = 0; Number(process.hrtime.bigint() - warm) < 2e9; pass++) {
  index.setEf(efs[pass % efs.length]);
  for (let q = 0; q < queries.length; q++) index.searchKnn(queries[q], k);
}

const points = [];
for (const ef of efs) {
  index.setEf(ef);
  let hits = 0;
  let searches = 0;
  const found = new Array(queries.length);
  t0 = process.hrtime.bigint();
  do {
    for (let q = 0; q < queries.length; q++) {
      const result = index.searchKnn(queries[q], k).neighbors;
      if (searches === 0) found[q] = result;
    }
    searches += queries.length;
  } while (Number(process.hrtime.bigint() - t0) < 1e9);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  for (let q = 0; q < queries.length; q++) {
    const truth = new Set(gt.data.subarray(q * gt.dim, q * gt.dim + k));
    for (const id of found[q]) if (truth.has(id)) hits++;
  }
  points.push({ ef, recall: hits / (queries.length * k), qps: searches / seconds });
}
process.stdout.write(JSON.stringify({ build_s: buildS, rss_mb: process.memoryUsage().rss / 1048576, points }) + '\n');
