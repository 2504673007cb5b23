'use strict';

// What the tests share: the stack global-setup.js started, a browser-like walk through
// CodeTether's sign-in and consent pages, a webhook receiver on 127.0.0.1, and direct API calls.

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

const stack = () => JSON.parse(fs.readFileSync(process.env.CODETETHER_ZAPIER_STACK, 'utf8'));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const pkcePair = () => {
  const verifier = crypto.randomBytes(48).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
};

const unescapeHtml = (s) =>
  s
    .replace(/&#x([0-9a-f]+);/gi, (_m, h) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_m, d) => String.fromCharCode(parseInt(d, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

const attr = (tag, name) => {
  const m = tag.match(new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)"|([^\\s>]+))`, 'i'));
  return m ? unescapeHtml(m[1] ?? m[2] ?? m[3]) : undefined;
};

// The hidden inputs of the page's form, as a browser would submit them.
const hiddenFields = (html) => {
  const fields = {};
  for (const tag of html.match(/<input\b[^>]*>/gi) || []) {
    if ((attr(tag, 'type') || '').toLowerCase() === 'hidden' && attr(tag, 'name')) {
      fields[attr(tag, 'name')] = attr(tag, 'value') || '';
    }
  }
  return fields;
};

// Signs in and approves on /oauth/authorize like a person in a browser; returns the redirect's
// query (code, state).
const signInAndConsent = async (authorizeUrl, { email, password }) => {
  const cookies = new Map();
  const send = async (url, init = {}) => {
    const headers = { ...(init.headers || {}) };
    if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const r = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of r.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      cookies.set(pair.slice(0, i), pair.slice(i + 1));
    }
    return r;
  };
  const post = (url, fields) =>
    send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  const formAction = (html, page) => new URL(attr(html.match(/<form\b[^>]*>/i)[0], 'action'), page).toString();

  let r = await send(authorizeUrl);
  let html = await r.text();
  if (r.status !== 200) throw new Error(`authorize page answered ${r.status}: ${html}`);
  let page = authorizeUrl;
  if (/type=password/i.test(html)) {
    r = await post(formAction(html, page), { ...hiddenFields(html), email, password });
    if (r.status !== 303 && r.status !== 302) throw new Error(`sign-in answered ${r.status}: ${await r.text()}`);
    page = new URL(r.headers.get('location'), page).toString();
    r = await send(page);
    html = await r.text();
  }
  r = await post(formAction(html, page), { ...hiddenFields(html), action: 'approve' });
  if (r.status !== 302 && r.status !== 303) throw new Error(`consent answered ${r.status}: ${await r.text()}`);
  return Object.fromEntries(new URL(r.headers.get('location')).searchParams);
};

// A webhook receiver on 127.0.0.1 that records what arrives (and answers 200).
const startReceiver = async () => {
  const requests = [];
  const waiters = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method, url: req.url, headers: req.headers, body, json: JSON.parse(body || 'null') });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"success"}');
      for (const w of [...waiters]) w();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    url: (path = '/hook') => `${base}${path}`,
    requests,
    waitFor: (predicate, timeoutMs = 60000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = requests.filter(predicate);
          if (found.length) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            resolve(found[0]);
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`nothing matching arrived in ${timeoutMs} ms; got ${JSON.stringify(requests.map((q) => q.url))}`));
        }, timeoutMs);
        waiters.push(check);
        check();
      }),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
};

// Direct API calls with the test user's API key (for setting things up and checking results).
const api = async (method, path, body, key) => {
  const r = await fetch(`${stack().baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key || stack().apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : null };
};

// Creates a task directly (201 or a clear error).
const createTask = async (body) => {
  const r = await api('POST', '/v1/automation/tasks', body);
  if (r.status !== 201) throw new Error(`creating a task answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
};

const waitForStatus = async (taskId, statuses, timeoutMs = 60000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await api('GET', `/v1/automation/tasks/${taskId}?wait=5`);
    if (r.status !== 200) throw new Error(`reading task ${taskId} answered ${r.status}: ${JSON.stringify(r.body)}`);
    if (statuses.includes(r.body.status)) return r.body;
    if (Date.now() > deadline) throw new Error(`task ${taskId} stuck in ${r.body.status}`);
    await sleep(100);
  }
};

module.exports = { stack, sleep, pkcePair, hiddenFields, signInAndConsent, startReceiver, api, createTask, waitForStatus };
