#!/usr/bin/env node
// Reads a Strapi collection with the official client (@strapi/client, installed by
// scripts/ensure-strapi-client.sh), authenticated with a Strapi API token, exactly as a server-side
// client (an SSR site, a script) does:
//
//   nm=$(scripts/ensure-strapi-client.sh)
//   NODE_PATH="$nm" STRAPI_URL=http://cms.localhost:8080/api STRAPI_TOKEN=<API token> \
//     STRAPI_COLLECTION=articles node scripts/strapi-client-probe.js
//
// Environment: STRAPI_URL (the client's baseURL), STRAPI_TOKEN (its `auth`), STRAPI_COLLECTION,
// STRAPI_HEADERS (optional JSON object: the client's `headers`).
// Prints one JSON line: {"ok":true,"status":200,"data":[...],"meta":{...}} or
// {"ok":false,"status":401,"error":"..."}; exits 0 either way (2 on a usage error).
//
// Node's fetch ignores a Host header, so names under .localhost (the e2e routers' hosts) are resolved
// to 127.0.0.1 here, as RFC 6761 and curl do: the request then carries the router's Host.
'use strict';

const dns = require('dns');

const lookup = dns.lookup;
dns.lookup = function localhostLookup(host, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  if (/(^|\.)localhost$/i.test(host)) {
    const opts = typeof options === 'number' ? { family: options } : options || {};
    if (opts.all) return process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
    return process.nextTick(callback, null, '127.0.0.1', 4);
  }
  return lookup.call(dns, host, options, callback);
};

const { strapi } = require('@strapi/client');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

async function main() {
  const { STRAPI_URL: baseURL, STRAPI_TOKEN: auth, STRAPI_COLLECTION: collection } = process.env;
  if (!baseURL || !auth || !collection) {
    console.error('STRAPI_URL, STRAPI_TOKEN and STRAPI_COLLECTION are required');
    process.exit(2);
  }
  const headers = process.env.STRAPI_HEADERS ? JSON.parse(process.env.STRAPI_HEADERS) : undefined;
  const client = strapi({ baseURL, auth, headers });
  try {
    const res = await client.collection(collection).find();
    out({ ok: true, status: 200, data: res.data, meta: res.meta });
  } catch (err) {
    const status = err && err.response ? err.response.status : 0;
    let body = null;
    if (err && err.response) {
      try {
        body = await err.response.json();
      } catch (e) {
        body = null;
      }
    }
    out({ ok: false, status, error: String((err && err.message) || err), body });
  }
}

main();
