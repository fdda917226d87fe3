// bench_ajv: the reference for bench_schema.c. ajv 8 compiles a schema to JavaScript
// code, which makes it the fastest JavaScript validator; this measures it on the same
// schema and instances (bench_schema --dump writes them) with allErrors off and on.
// Not a test: scripts/bench-schema.sh runs it beside bench_schema and compares.
//   node bench_ajv.js DIR SECS [LABEL [FMT]]   (NODE_PATH must reach ajv and ajv-formats)
// LABEL: only that figure -- or, when ajv has none of that name, the one named LABEL
// without its last " (...)" (bench_schema's "X (how)" is set against ajv's "X"); no
// figure of either name: nothing. FMT 0 or 1: only that format mode.
// Rates are per CPU-second of the process (process.cpuUsage), like bench_schema's.
'use strict';
const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const dir = process.argv[2];
const secs = Number(process.argv[3] || 1);
const want = process.argv[4] || '';
const wantFmt = process.argv[5] === undefined ? -1 : Number(process.argv[5]);
const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
const schemaText = read('schema.json');
const validText = read('valid.json');
const invalidText = read('invalid.json');
const schema = JSON.parse(schemaText);
const valid = JSON.parse(validText);
const invalid = JSON.parse(invalidText);

function cpu() {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
}

let sink = 0;
const labels = ['validate valid (parsed)', 'validate valid (parsed), all errors',
    'parse + validate valid', 'parse + validate valid, all errors', 'validate invalid, first error',
    'validate invalid, collect 4 errors', 'validate invalid, collect 4 errors + read them',
    'parse + validate invalid, collect 4 errors'];
const pick = !want ? '' : labels.includes(want) ? want : want.replace(/ \([^)]*\)$/, '');
if (want && !labels.includes(pick)) process.exit(0);
function rate(label, fn) {
    if (pick && label !== pick) return;
    for (let k = 0; k < 20000; k++) fn(); // warm up: let V8 optimise the code first
    let n = 0;
    const t0 = cpu();
    let t;
    do {
        for (let k = 0; k < 1000; k++) fn();
        n += 1000;
    } while ((t = cpu() - t0) < secs);
    console.log(`${label.padEnd(44)} ${(n / t).toFixed(0).padStart(12)} /s`);
}

function make(allErrors, formats) {
    const ajv = new Ajv2020({ allErrors, validateFormats: formats });
    addFormats(ajv);
    return ajv.compile(schema);
}

const version = require('ajv/package.json').version;
for (const fmt of [false, true]) {
    if (wantFmt >= 0 && Number(fmt) !== wantFmt) continue;
    const first = make(false, fmt);
    const all = make(true, fmt);
    if (!first(valid) || !all(valid) || first(invalid) || all(invalid) || all.errors.length !== 4) {
        console.error(`bench_ajv: unexpected verdicts (${all.errors && all.errors.length} errors)`);
        process.exit(1);
    }
    console.log(`ajv ${version} format assertion ${fmt ? 'on' : 'off'} (node ${process.version})`);
    rate('validate valid (parsed)', () => { sink += first(valid) ? 1 : 0; });
    rate('validate valid (parsed), all errors', () => { sink += all(valid) ? 1 : 0; });
    rate('parse + validate valid', () => { sink += first(JSON.parse(validText)) ? 1 : 0; });
    rate('parse + validate valid, all errors', () => { sink += all(JSON.parse(validText)) ? 1 : 0; });
    rate('validate invalid, first error', () => { sink += first(invalid) ? 1 : 0; });
    rate('validate invalid, collect 4 errors', () => { sink += all(invalid) ? 1 : 0; });
    rate('validate invalid, collect 4 errors + read them', () => {
        sink += all(invalid) ? 1 : 0;
        for (const e of all.errors) sink += e.message.length + e.instancePath.length + e.schemaPath.length;
    });
    rate('parse + validate invalid, collect 4 errors', () => { sink += all(JSON.parse(invalidText)) ? 1 : 0; });
}
if (sink < 0) console.log(sink);
