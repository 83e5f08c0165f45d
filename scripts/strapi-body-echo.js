#!/usr/bin/env node
// Runs Strapi 5.54's own body middleware (@strapi/core's `strapi::body`, with the config Strapi gives it
// for the plain 'strapi::body' entry of config/middlewares.js: {}) in a Koa app, all from the node_modules
// of the e2e Strapi app, and echoes what a controller would see as ctx.request.body. The differential
// test (request_body_diff_test.go, `make diff_test`) sends the same raw requests here and to the
// plugin's readBodyFields.
//
//   node scripts/strapi-body-echo.js <node_modules>     (or env ACCESSPROXY_STRAPI_NODE_MODULES)
//
// Prints one JSON line {"port":N,"versions":{...}} on stdout once it listens on 127.0.0.1:N, then answers
// every request with 200 and either
//   {"ok":true,"body":<ctx.request.body, when JSON.stringify can show it>,"kind":"object|array|undefined|...",
//    "fields":<canon>,"audience":<canon>|null,"identifier":<canon>|null}
// or, when the body parser throws, {"ok":false,"status":<err.status>}.
//
// <canon> is a canonical text of a value that the Go side can rebuild exactly from what the plugin
// returns: strings as the hex of their UTF-8 (a string with a lone surrogate, which no Go string can
// be, as "L" + the hex of its UTF-16 code units), numbers as the hex of their float64 bits, object keys
// sorted. "fields" is the canon of the body's own keys when the body is a plain object, else of {}: a
// top-level array, a string or no body at all names no field a controller reads.
'use strict';

const path = require('path');

const nm = process.argv[2] || process.env.ACCESSPROXY_STRAPI_NODE_MODULES;
if (!nm) {
  console.error('usage: strapi-body-echo.js <node_modules of the e2e Strapi app>');
  process.exit(2);
}
const from = (name) => path.join(nm, name);
const Koa = require(from('koa'));
const { body: bodyMiddleware } = require(from('@strapi/core/dist/middlewares/body.js'));

function versionOf(name, base) {
  const pkg = require.resolve(name + '/package.json', { paths: [base] });
  return require(pkg).version;
}
const koaBodyDir = path.dirname(require.resolve(from('koa-body/package.json')));
const coBodyDir = path.dirname(require.resolve('co-body/package.json', { paths: [koaBodyDir] }));
const versions = {
  '@strapi/core': versionOf('@strapi/core', nm),
  koa: versionOf('koa', nm),
  'koa-body': versionOf('koa-body', nm),
  'co-body': versionOf('co-body', koaBodyDir),
  qs: versionOf('qs', coBodyDir),
  inflation: versionOf('inflation', coBodyDir),
  'raw-body': versionOf('raw-body', coBodyDir),
  '@hapi/bourne': versionOf('@hapi/bourne', coBodyDir),
  'type-is': versionOf('type-is', path.dirname(require.resolve(from('koa/package.json')))),
};

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function canonString(s) {
  if (!loneSurrogate.test(s)) return 's' + Buffer.from(s, 'utf8').toString('hex');
  let out = 'L';
  for (let i = 0; i < s.length; i++) out += s.charCodeAt(i).toString(16).padStart(4, '0');
  return out;
}

function canonNumber(n) {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return 'd' + b.toString('hex');
}

// canon without recursion: bodies nest deeper than any call stack.
function canon(root) {
  const out = [];
  const todo = [{ v: root }];
  while (todo.length) {
    const item = todo.pop();
    if ('lit' in item) {
      out.push(item.lit);
      continue;
    }
    const v = item.v;
    if (v === null) out.push('n');
    else if (v === undefined) out.push('u');
    else if (v === true) out.push('t');
    else if (v === false) out.push('f');
    else if (typeof v === 'number') out.push(canonNumber(v));
    else if (typeof v === 'string') out.push(canonString(v));
    else if (Array.isArray(v)) {
      todo.push({ lit: ']' });
      for (let i = v.length - 1; i >= 0; i--) {
        todo.push({ v: v[i] });
        if (i > 0) todo.push({ lit: ',' });
      }
      todo.push({ lit: '[' });
    } else if (typeof v === 'object') {
      const entries = Object.keys(v).map((k) => [canonString(k), v[k]]);
      entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      todo.push({ lit: '}' });
      for (let i = entries.length - 1; i >= 0; i--) {
        todo.push({ v: entries[i][1] });
        todo.push({ lit: entries[i][0] + ':' });
        if (i > 0) todo.push({ lit: ',' });
      }
      todo.push({ lit: '{' });
    } else out.push('?' + typeof v);
  }
  return out.join('');
}

function describe(body) {
  const isObject = body !== null && typeof body === 'object' && !Array.isArray(body);
  const own = (k) => isObject && Object.prototype.hasOwnProperty.call(body, k);
  let shown;
  try {
    shown = JSON.stringify(body);
    if (shown !== undefined && shown.length > 2000) shown = undefined;
  } catch (e) {
    shown = undefined; // deeper than JSON.stringify goes
  }
  return {
    ok: true,
    body: shown === undefined ? undefined : JSON.parse(shown),
    kind: body === null ? 'null' : Array.isArray(body) ? 'array' : typeof body,
    fields: canon(isObject ? body : {}),
    audience: own('audience') ? canon(body.audience) : null,
    identifier: own('identifier') ? canon(body.identifier) : null,
  };
}

const strapi = { plugin: () => undefined };
const app = new Koa();
app.silent = true;
// What Strapi adds to the context and the body middleware calls (a formidable maxFileSize error).
app.context.payloadTooLarge = function (msg) {
  const err = new Error(msg);
  err.status = 413;
  throw err;
};
app.use(async (ctx, next) => {
  let answer;
  try {
    await next();
    answer = ctx.state.echo;
  } catch (err) {
    answer = { ok: false, status: err.status || err.statusCode || 500 };
  }
  ctx.status = 200;
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(answer);
});
app.use(bodyMiddleware({}, { strapi }));
app.use(async (ctx) => {
  ctx.state.echo = describe(ctx.request.body);
});

const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, versions }) + '\n');
});
// The test closes stdin when it is done: exit then, also when the test process dies.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
