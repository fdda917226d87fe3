// Validates agentd's OTLP/JSON against the official opentelemetry-proto definitions, and
// serves as a local OTLP/HTTP receiver for `agentd trace export --endpoint`.
//
//   node otlp_proto.cjs validate FILE          each line of FILE is one TracesData
//   node otlp_proto.cjs serve --port-file F --log L [--fail N] [--require 'name: value']
//
// The .proto files come from npm (@opentelemetry/otlp-grpc-exporter-base ships the
// opentelemetry-proto tree under build/protos) and are loaded with protobufjs. protobufjs'
// fromObject ignores unknown keys and accepts any string for bytes, so the JSON is first
// walked against the descriptors with the OTLP JSON encoding rules (OTLP spec, "JSON
// Protobuf Encoding"): every key a lowerCamelCase field of its message; traceId/spanId/
// parentSpanId hex of 16/8 bytes; 64-bit integers as decimal strings; enums as integers
// of the enum; oneofs (AnyValue) with exactly one member. Then the message is built,
// verified, encoded to protobuf and decoded back, and the span count must survive.
//
// serve: answers the first N requests 503 (Retry-After: 0), requires a header when asked
// (401 otherwise), validates each body (400 with the problems when invalid, like a
// collector), and appends one JSON line per request to the log: {status, problems, spans,
// headers}. Ends by itself after 60 s.
'use strict';
const fs = require('fs');
const http = require('http');
const path = require('path');
const protobuf = require('protobufjs');

const PROTO_DIR = path.join(
    path.dirname(require.resolve('@opentelemetry/otlp-grpc-exporter-base/package.json')),
    'build', 'protos');

function loadRoot() {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
    root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
    root.resolveAll();
    return root;
}

const root = loadRoot();
const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const BYTES_LEN = {traceId: 16, spanId: 8, parentSpanId: 8};
const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32 = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);

// Walk value (JSON of message type) and return the object protobufjs should build from,
// pushing problems as "path: what".
function walk(type, value, where, problems) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        problems.push(`${where}: ${type.name} must be a JSON object`);
        return {};
    }
    const out = {};
    const oneofSeen = {};
    for (const [key, v] of Object.entries(value)) {
        const field = type.fields[key];
        if (!field) {
            problems.push(`${where}.${key}: no such field in ${type.fullName}`);
            continue;
        }
        if (field.partOf) {
            const o = field.partOf.name;
            if (oneofSeen[o])
                problems.push(`${where}: oneof ${o} has both ${oneofSeen[o]} and ${key}`);
            oneofSeen[o] = key;
        }
        const here = `${where}.${key}`;
        if (field.repeated) {
            if (!Array.isArray(v)) {
                problems.push(`${here}: repeated field must be an array`);
                continue;
            }
            out[key] = v.map((x, i) => scalar(field, x, `${here}[${i}]`, problems));
        } else {
            out[key] = scalar(field, v, here, problems);
        }
    }
    if (type.fullName === '.opentelemetry.proto.common.v1.AnyValue' && !oneofSeen.value)
        problems.push(`${where}: AnyValue with no value`);
    return out;
}

function scalar(field, v, where, problems) {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type)
        return walk(rt, v, where, problems);
    if (rt instanceof protobuf.Enum) {
        if (!Number.isInteger(v) || !Object.values(rt.values).includes(v))
            problems.push(`${where}: ${rt.name} must be one of its integer values, got ${JSON.stringify(v)}`);
        return v;
    }
    if (field.type === 'bytes') {
        const n = BYTES_LEN[field.name];
        if (typeof v !== 'string' || !/^[0-9a-f]*$/.test(v) || (n && v.length !== 2 * n)) {
            problems.push(`${where}: must be ${n ? 2 * n + ' ' : ''}lowercase hex characters, got ${JSON.stringify(v)}`);
            return Buffer.alloc(0);
        }
        return Buffer.from(v, 'hex');
    }
    if (INT64.has(field.type)) {
        if (typeof v !== 'string' || !/^-?[0-9]+$/.test(v))
            problems.push(`${where}: 64-bit integer must be a decimal string, got ${JSON.stringify(v)}`);
        return v;
    }
    if (INT32.has(field.type)) {
        if (!Number.isInteger(v))
            problems.push(`${where}: must be an integer, got ${JSON.stringify(v)}`);
        return v;
    }
    if (field.type === 'double' || field.type === 'float') {
        if (typeof v !== 'number')
            problems.push(`${where}: must be a number, got ${JSON.stringify(v)}`);
        return v;
    }
    if (field.type === 'bool') {
        if (typeof v !== 'boolean')
            problems.push(`${where}: must be true or false`);
        return v;
    }
    if (field.type === 'string') {
        if (typeof v !== 'string')
            problems.push(`${where}: must be a string`);
        return v;
    }
    problems.push(`${where}: unhandled type ${field.type}`);
    return v;
}

// Problems with one TracesData JSON text (empty when valid), and its span count.
function validate(text) {
    const problems = [];
    let json;
    try {
        json = JSON.parse(text);
    } catch (e) {
        return {problems: [`not JSON: ${e.message}`], spans: 0};
    }
    const obj = walk(Request, json, '$', problems);
    let spans = 0;
    for (const rs of json.resourceSpans || [])
        for (const ss of rs.scopeSpans || [])
            for (const s of ss.spans || []) {
                spans++;
                if (!s.traceId || !s.spanId || !s.name)
                    problems.push(`span ${s.spanId}: traceId, spanId and name are required`);
                if (BigInt(s.startTimeUnixNano || 0) > BigInt(s.endTimeUnixNano || 0))
                    problems.push(`span ${s.spanId}: ends before it starts`);
            }
    if (problems.length)
        return {problems, spans};
    const msg = Request.fromObject(obj);
    const err = Request.verify(msg);
    if (err)
        return {problems: [`verify: ${err}`], spans};
    const back = Request.decode(Request.encode(msg).finish());
    let n = 0;
    for (const rs of back.resourceSpans) for (const ss of rs.scopeSpans) n += ss.spans.length;
    if (n !== spans)
        problems.push(`protobuf round trip kept ${n} of ${spans} spans`);
    return {problems, spans};
}

function main() {
    const args = process.argv.slice(2);
    const opt = (name) => {
        const i = args.indexOf(name);
        return i >= 0 ? args[i + 1] : undefined;
    };
    if (args[0] === 'validate') {
        const lines = fs.readFileSync(args[1], 'utf8').split('\n').filter((l) => l.trim());
        let bad = 0;
        lines.forEach((l, i) => {
            const r = validate(l);
            if (r.problems.length) {
                bad++;
                for (const p of r.problems.slice(0, 20)) console.log(`line ${i + 1}: ${p}`);
            } else {
                console.log(`line ${i + 1}: valid ExportTraceServiceRequest, ${r.spans} spans`);
            }
        });
        if (!lines.length) console.log('no lines');
        process.exit(bad || !lines.length ? 1 : 0);
    }
    if (args[0] === 'serve') {
        let fail = Number(opt('--fail') || 0);
        const require_ = opt('--require');
        const log = opt('--log');
        const server = http.createServer((req, res) => {
            const chunks = [];
            req.on('data', (c) => chunks.push(c));
            req.on('end', () => {
                const body = Buffer.concat(chunks).toString('utf8');
                const entry = {path: req.url, method: req.method, headers: req.headers};
                const reply = (status, obj, extra) => {
                    entry.status = status;
                    fs.appendFileSync(log, JSON.stringify(entry) + '\n');
                    res.writeHead(status, Object.assign({'Content-Type': 'application/json'}, extra || {}));
                    res.end(JSON.stringify(obj));
                };
                if (req.method !== 'POST' || req.url !== '/v1/traces')
                    return reply(404, {message: `no route ${req.method} ${req.url}`});
                if (fail > 0) {
                    fail--;
                    return reply(503, {message: 'warming up'}, {'Retry-After': '0'});
                }
                if (require_) {
                    const [k, ...rest] = require_.split(':');
                    if (req.headers[k.trim().toLowerCase()] !== rest.join(':').trim())
                        return reply(401, {message: 'missing or wrong ' + k.trim()});
                }
                if (!/^application\/json/.test(req.headers['content-type'] || ''))
                    return reply(415, {message: 'Content-Type must be application/json'});
                const r = validate(body);
                entry.problems = r.problems;
                entry.spans = r.spans;
                entry.body = body;
                if (r.problems.length) return reply(400, {code: 3, message: r.problems.join('; ')});
                reply(200, {partialSuccess: {}});
            });
        });
        server.listen(0, '127.0.0.1', () => {
            fs.writeFileSync(opt('--port-file'), String(server.address().port));
        });
        // Runs until killed, or 60 s at most.
        setTimeout(() => process.exit(0), 60000);
        return;
    }
    console.error('usage: otlp_proto.cjs validate FILE | serve --port-file F --log L [--fail N] [--require "K: V"]');
    process.exit(2);
}

main();
