// Starts a real `codetether dev` (Temporal dev server, a worker and the API) on free loopback
// ports in a temporary data folder, and a stand-in for Make's webhook gateway that runs the
// webhook's IML communication on every delivery.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './app.mjs';
import { render, truthy } from './iml.mjs';

const run = promisify(execFile);

export function codetetherBin() {
	const bin = process.env.CODETETHER_BIN ?? join(REPO_ROOT, '.venv', 'bin', 'codetether');
	if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`make install\` at the repository root first`);
	return bin;
}

/** `n` distinct free loopback ports (held open together, so they cannot repeat). */
export async function freePorts(n) {
	const servers = await Promise.all(
		Array.from({ length: n }, () => new Promise((resolve, reject) => {
			const srv = createServer();
			srv.once('error', reject);
			srv.listen(0, '127.0.0.1', () => resolve(srv));
		})),
	);
	const ports = servers.map((s) => s.address().port);
	await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
	return ports;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function startDev(attempts = 3) {
	for (let i = 1; ; i++) {
		try {
			return await startDevOnce();
		} catch (err) {
			// Another process may take a probed port before the stack binds it: try other ports.
			if (i >= attempts || !/already in use/.test(err.message)) throw err;
		}
	}
}

async function startDevOnce() {
	const dataDir = mkdtempSync(join(tmpdir(), 'codetether-make-'));
	const [api, temporal, ui] = await freePorts(3);
	// Local repositories are allowed under `codetether dev`; the CLI run beside it needs the same.
	const env = { ...process.env, CODETETHER_DEFAULT_MODEL: 'demo', CODETETHER_DATA_DIR: dataDir, CODETETHER_CODEBASE_ALLOW_LOCAL: 'true' };
	for (const k of ['OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'GEMINI_API_KEY', 'XAI_API_KEY', 'MINIMAX_API_KEY', 'CODETETHER_DATABASE_URL']) delete env[k];
	const child = spawn(
		codetetherBin(),
		['dev', '--api-port', String(api), '--temporal-port', String(temporal), '--ui-port', String(ui), '--data-dir', dataDir],
		{ env, stdio: ['ignore', 'pipe', 'pipe'] },
	);
	let out = '';
	child.stdout.on('data', (c) => (out += c));
	child.stderr.on('data', (c) => (out += c));
	const exited = new Promise((r) => child.once('exit', r));
	const url = `http://127.0.0.1:${api}`;
	const deadline = Date.now() + 180_000;
	while (!out.includes('CodeTether is running.')) {
		if (child.exitCode !== null) {
			rmSync(dataDir, { recursive: true, force: true });
			throw new Error(`codetether dev exited (${child.exitCode}):\n${out}`);
		}
		if (Date.now() > deadline) {
			child.kill('SIGTERM');
			throw new Error(`codetether dev did not start:\n${out}`);
		}
		await sleep(200);
	}
	const key = /API key\s+(ct_\S+)/.exec(out)?.[1];
	if (!key) throw new Error(`no API key in the dev banner:\n${out}`);
	for (;;) {
		const r = await fetch(`${url}/readyz`).catch(() => null);
		if (r?.ok) break;
		// A process of the stack died after the banner (e.g. its probed port was taken meanwhile):
		// stop and say why, so startDev can try other ports.
		const died = /(\w+) exited with code/.exec(out);
		if (died || Date.now() > deadline) {
			child.kill('SIGTERM');
			await exited;
			let log = '';
			if (died) try { log = readFileSync(join(dataDir, 'logs', `${died[1]}.log`), 'utf8').slice(-4000); } catch {}
			rmSync(dataDir, { recursive: true, force: true });
			throw new Error(`codetether dev never became ready:\n${out}\n${log}`);
		}
		await sleep(200);
	}
	// A bare repository the tests can register as a codebase.
	const repoDir = join(dataDir, 'billing.git');
	await run('git', ['init', '-q', '--bare', repoDir]);
	return {
		url,
		key,
		dataDir,
		repoDir,
		email: 'admin@codetether.local',
		env,
		async cli(...args) {
			const { stdout } = await run(codetetherBin(), args, { env });
			return stdout;
		},
		/** The CLI with `input` on standard input (e.g. --password-stdin). */
		cliWithInput(input, ...args) {
			return new Promise((resolve, reject) => {
				const p = execFile(codetetherBin(), args, { env }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
				p.stdin.end(input);
			});
		},
		async api(method, path, body) {
			const r = await fetch(url + path, {
				method,
				headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
				body: body ? JSON.stringify(body) : undefined,
			});
			const text = await r.text();
			return { status: r.status, body: text ? JSON.parse(text) : null };
		},
		async stop() {
			if (child.exitCode === null) {
				child.kill('SIGTERM');
				const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
				await exited;
				clearTimeout(timer);
			}
			const logs = ['api', 'worker', 'temporal'].map((n) => join(dataDir, 'logs', `${n}.log`)).filter(existsSync);
			if (process.env.MAKE_TEST_KEEP_DATA) return logs;
			rmSync(dataDir, { recursive: true, force: true });
			return [];
		},
		logs() {
			return ['api', 'worker'].map((n) => join(dataDir, 'logs', `${n}.log`)).filter(existsSync).map((p) => readFileSync(p, 'utf8')).join('\n');
		},
	};
}

/**
 * Stands in for Make's gateway of one dedicated webhook: each request is run through the
 * webhook's communication (condition, respond, iterate, output) with the webhook's parameters.
 * Accepted bundles and rejected requests are kept for the test to inspect.
 */
export async function startWebhookGateway(communication, parameters) {
	const accepted = [];
	const rejected = [];
	const server = createServer((req, res) => {
		let raw = '';
		req.on('data', (c) => (raw += c));
		req.on('end', () => {
			let body = raw;
			try {
				body = JSON.parse(raw);
			} catch {
				/* Make passes non-JSON bodies on as text */
			}
			const query = Object.fromEntries(new URL(req.url, 'http://gateway').searchParams);
			const ctx = { body, headers: req.headers, query, method: req.method, parameters };
			const ok = communication.condition === undefined || truthy(render(communication.condition, ctx));
			if (ok) {
				const items = communication.iterate ? render(communication.iterate, ctx) : [body];
				for (const item of items) accepted.push(communication.output === undefined ? item : render(communication.output, { ...ctx, item }));
			} else {
				rejected.push({ headers: req.headers, body });
			}
			const respond = communication.respond ? render(communication.respond, ctx) : { status: 200, type: 'text', body: 'Accepted' };
			const type = respond.type ?? 'json';
			res.writeHead(Number(respond.status ?? 200), { 'content-type': type === 'json' ? 'application/json' : 'text/plain', ...(respond.headers ?? {}) });
			res.end(type === 'json' ? JSON.stringify(respond.body ?? {}) : String(respond.body ?? ''));
		});
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	return {
		url: `http://127.0.0.1:${server.address().port}/make-hook/abc123`,
		accepted,
		rejected,
		close: () => new Promise((r) => server.close(r)),
	};
}

export async function until(what, fn, timeoutMs = 30_000) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await sleep(100);
	}
}

/**
 * A browser with a cookie jar for the service's sign-in and consent pages: follows the
 * authorization request to the redirect back to Make and returns that redirect's query.
 */
export async function authorizeInBrowser(authorizeUrl, { email, password }) {
	const jar = new Map();
	const go = async (url, init = {}) => {
		const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
		const r = await fetch(url, { ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), ...(cookie ? { cookie } : {}) } });
		for (const c of r.headers.getSetCookie?.() ?? []) {
			const [pair] = c.split(';');
			const i = pair.indexOf('=');
			jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
		}
		return { r, text: await r.text() };
	};
	const csrf = (html) => {
		const m = /name=["']?csrf_token["']? value=["']([^"']+)["']/.exec(html);
		if (!m) throw new Error(`no csrf_token in the page:\n${html.slice(0, 500)}`);
		return m[1];
	};
	const form = (fields) => ({
		method: 'POST',
		headers: { 'content-type': 'application/x-www-form-urlencoded' },
		body: new URLSearchParams(fields).toString(),
	});
	const target = new URL(authorizeUrl);
	const params = Object.fromEntries(target.searchParams);
	const action = `${target.origin}${target.pathname}`;
	let { r, text } = await go(authorizeUrl);
	if (r.status !== 200) throw new Error(`authorize page answered ${r.status}: ${text}`);
	if (!text.includes('is asking to')) {
		({ r, text } = await go(action, form({ ...params, action: 'signin', csrf_token: csrf(text), email, password })));
		if (r.status !== 303) throw new Error(`sign-in answered ${r.status}: ${text.slice(0, 500)}`);
		({ r, text } = await go(new URL(r.headers.get('location'), action).toString()));
	}
	if (!text.includes('is asking to')) throw new Error(`no consent page:\n${text.slice(0, 500)}`);
	// The consent form approves the authorization request the server stored, by its id.
	const requestId = /name=["']?request_id["']? value=["']([^"']+)["']/.exec(text);
	if (!requestId) throw new Error(`no request_id in the consent page:\n${text.slice(0, 500)}`);
	({ r } = await go(action, form({ action: 'approve', request_id: requestId[1], csrf_token: csrf(text) })));
	const location = r.headers.get('location');
	if (r.status !== 302 || !location) throw new Error(`consent answered ${r.status}`);
	return { location, query: Object.fromEntries(new URL(location).searchParams) };
}
