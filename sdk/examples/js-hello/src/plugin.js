// js-hello: an Osler plugin written in JavaScript.
//
//   GET /plugins/js-hello/            a page greeting the signed-in person; counts the visit
//   GET /plugins/js-hello/api/visits  {"site", "visits", "greeting"} as JSON
//
// The host runs every request in a fresh instance: nothing in module variables survives from
// one request to the next. What must last goes in kv (one store per plugin, shared by every
// site where it is enabled, so the site goes into the key).

import * as kv from 'osler:plugin/kv@0.2.0';
import * as config from 'osler:plugin/config@0.2.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// The HTTP status of each case of osler:plugin/types.error.
const STATUS = {
  denied: 403,
  'not-found': 404,
  invalid: 400,
  conflict: 409,
  unavailable: 503,
  'too-large': 413,
  internal: 500,
};

export const handler = {
  // `request` is osler:plugin/types.request: method, path (inside the plugin), query,
  // headers, body (a Uint8Array) and caller (user, displayName, roles, site, siteName, ...).
  handle(request) {
    try {
      return route(request);
    } catch (e) {
      return fromError(e);
    }
  },
};

function route(request) {
  const { method, path } = request;
  if (path === '/' || path === '/api/visits') {
    if (method !== 'GET' && method !== 'HEAD') {
      return json(405, { error: { code: 'method-not-allowed', message: `${method} ${path}: use GET` } }, [['allow', 'GET, HEAD']]);
    }
    return path === '/' ? page(request.caller) : visits(request.caller);
  }
  return json(404, { error: { code: 'not-found', message: `no route ${path}` } });
}

function page(caller) {
  const count = countVisit(caller.site);
  const body = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hello from JavaScript</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}</style></head>
<body>
<p><a href="/">Osler</a></p>
<h1>Hello from JavaScript</h1>
<p>${escape(greeting())}, ${escape(caller.displayName)}!</p>
<p>This page has been opened <strong>${count}</strong> ${count === 1 ? 'time' : 'times'} at ${escape(caller.siteName)}.</p>
</body>
</html>
`;
  return respond(200, 'text/html; charset=utf-8', body);
}

function visits(caller) {
  const value = kv.get(visitsKey(caller.site));
  return json(200, {
    site: caller.site,
    visits: value === undefined ? 0 : Number(decoder.decode(value)),
    greeting: greeting(),
  });
}

// The site's greeting: the administrator's value, or the manifest's default.
function greeting() {
  const value = config.get('greeting');
  return value?.tag === 'text' ? value.val : 'Hello';
}

function visitsKey(site) {
  return `site/${site}/visits`;
}

// Add one to the site's counter with compare-and-swap: the batch writes only if the counter
// still holds what was read, so two visits at the same moment are both counted.
function countVisit(site) {
  const key = visitsKey(site);
  for (let attempt = 0; attempt < 5; attempt++) {
    const old = kv.get(key);
    const next = (old === undefined ? 0 : Number(decoder.decode(old))) + 1;
    try {
      kv.batch([
        { tag: 'expect', val: { key, value: old } },
        { tag: 'put', val: { key, value: encoder.encode(String(next)) } },
      ]);
      return next;
    } catch (e) {
      if (hostError(e)?.tag !== 'conflict') throw e;
    }
  }
  throw { tag: 'conflict', val: 'the visit counter is busy; try again' };
}

// A host call that fails throws its osler:plugin/types.error ({tag, val}) as the payload of
// the exception; anything else is a bug in this code.
function hostError(e) {
  const err = e?.payload ?? e;
  return err && typeof err.tag === 'string' && err.tag in STATUS ? err : undefined;
}

function fromError(e) {
  const err = hostError(e);
  if (err) {
    return json(STATUS[err.tag], { error: { code: err.tag, message: err.val } });
  }
  return json(500, { error: { code: 'internal', message: String(e) } });
}

function json(status, value, headers = []) {
  return respond(status, 'application/json', JSON.stringify(value), headers);
}

function respond(status, contentType, text, headers = []) {
  return { status, headers: [['content-type', contentType], ...headers], body: encoder.encode(text) };
}

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
