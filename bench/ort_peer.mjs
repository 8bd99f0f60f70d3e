// Times the ONNX models of `visage bench runtime` in onnxruntime-node on the
// same machine, in the same run, with the same input shapes and thread count,
// and prints Visage's CPU p50 beside it with the ratio (ours / ORT).
//
//   node bench/ort_peer.mjs --visage visage_cpu.json --list list.tsv [--threads 2] [--json out.json]
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, token, i, all) => (token.startsWith('--') ? [...pairs, [token.slice(2), all[i + 1]]] : pairs), []));
const npmDir = process.env.VISAGE_NPM_DIR || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../third_party/npm/node_modules');
const require = createRequire(path.join(npmDir, 'noop.js'));
const ort = require('onnxruntime-node');
const threads = Number(args.threads || 2);
const iterations = Number(args.iterations || 50);
const warmup = Number(args.warmup || 10);

const visage = JSON.parse(fs.readFileSync(args.visage, 'utf8'));
const list = fs.readFileSync(args.list, 'utf8').trim().split('\n').map((line) => line.split('\t'));

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)))];
}

const rows = [];
for (const [id, relative] of list) {
  if (!relative.endsWith('.onnx')) continue;
  const ours = visage.find((r) => r.model === id && r.config === 'cpu');
  const eager = visage.find((r) => r.model === id && r.config === 'cpu-eager');
  if (!ours || ours.error) { rows.push({ model: id, error: ours ? ours.error : 'not measured by visage' }); continue; }
  const session = await ort.InferenceSession.create(path.join(npmDir, relative), {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const shapes = ours.input.split(' ').map((s) => s.split('x').map(Number));
  const feeds = {};
  session.inputNames.forEach((name, i) => {
    const shape = shapes[i];
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => Math.random());
    feeds[name] = new ort.Tensor('float32', data, shape);
  });
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < iterations; ++i) {
    const start = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  const ortP50 = percentile(times, 0.5);
  rows.push({ model: id, input: ours.input, visage_p50_ms: ours.p50_ms, visage_eager_p50_ms: eager && eager.p50_ms,
              ort_p50_ms: ortP50, ort_p90_ms: percentile(times, 0.9), ratio: ours.p50_ms / ortP50, threads });
}

console.log('model'.padEnd(26) + 'input'.padEnd(16) + 'visage p50'.padStart(12) + 'ORT p50'.padStart(10) + 'ratio'.padStart(8));
for (const r of rows) {
  if (r.error) { console.log(r.model.padEnd(26) + 'FAILED: ' + r.error); continue; }
  console.log(r.model.padEnd(26) + r.input.padEnd(16) + r.visage_p50_ms.toFixed(3).padStart(12) +
              r.ort_p50_ms.toFixed(3).padStart(10) + r.ratio.toFixed(2).padStart(8));
}
if (args.json) fs.writeFileSync(args.json, JSON.stringify(rows, null, 2) + '\n');
