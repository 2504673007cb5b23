// Unit tests of the IML evaluator and of the request runtime (against a scripted local server).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { render, renderString, evaluateExpression, OMIT, ImlError } from './support/iml.mjs';
import { execute, pollTrigger, MakeError } from './support/runtime.mjs';

describe('IML expressions', () => {
	const ctx = {
		parameters: { title: 'Hello', tags: ['a', 'b'], empty: '', zero: 0, list: [{ key: 'k', value: 'v' }, { key: '', value: 'x' }] },
		body: { status: 'running', data: [{ id: 1 }, { id: 2 }], 'odd-key': 'yes' },
		headers: { 'x-codetether-token': 'tok' },
		connection: { domain: 'https://api.example', apiKey: 'ct_1', accessToken: null },
		statusCode: 404,
	};

	test('paths, backtick keys and 1-based indexes', () => {
		assert.equal(renderString('{{parameters.title}}', ctx), 'Hello');
		assert.equal(renderString('{{headers.`x-codetether-token`}}', ctx), 'tok');
		assert.equal(renderString("{{body['odd-key']}}", ctx), 'yes');
		assert.deepEqual(renderString('{{body.data[2]}}', ctx), { id: 2 });
		assert.equal(renderString('{{body.missing.deeper}}', ctx), undefined);
	});

	test('a whole expression keeps its type, a mixed string is text', () => {
		assert.deepEqual(renderString('{{parameters.tags}}', ctx), ['a', 'b']);
		assert.equal(renderString('{{parameters.zero}}', ctx), 0);
		assert.equal(renderString('Bearer {{connection.apiKey}}', ctx), 'Bearer ct_1');
		assert.equal(renderString('{{connection.domain}}/v1/{{parameters.title}}', ctx), 'https://api.example/v1/Hello');
		assert.equal(renderString('n={{parameters.tags}}', ctx), 'n=["a","b"]');
	});

	test('ifempty, if and omit', () => {
		assert.equal(renderString('{{ifempty(connection.accessToken, connection.apiKey)}}', ctx), 'ct_1');
		assert.equal(renderString('{{ifempty(parameters.empty, omit)}}', ctx), OMIT);
		assert.equal(renderString('{{ifempty(parameters.zero, 5)}}', ctx), 0);
		assert.equal(renderString("{{if(body.status = 'running', 'busy', 'idle')}}", ctx), 'busy');
		assert.deepEqual(render({ a: '{{ifempty(parameters.empty, omit)}}', b: '{{parameters.title}}', c: ['{{omit}}', 1] }, ctx), { b: 'Hello', c: [1] });
	});

	test('comparison and boolean operators', () => {
		assert.equal(evaluateExpression("body.status = 'queued' or body.status = 'running'", ctx), true);
		assert.equal(evaluateExpression("body.status != 'running'", ctx), false);
		assert.equal(evaluateExpression('statusCode < 300 or statusCode = 404', ctx), true);
		assert.equal(evaluateExpression('statusCode < 300 or statusCode = 409', ctx), false);
		assert.equal(evaluateExpression("not (body.status = 'running') and true", ctx), false);
		assert.equal(evaluateExpression("headers.`x-codetether-token` = 'tok'", ctx), true);
		assert.equal(evaluateExpression("headers.`x-missing` = 'tok'", ctx), false);
	});

	test('arithmetic and functions', () => {
		assert.equal(evaluateExpression('min(60, ceil(300 / 40))', ctx), 8);
		assert.equal(evaluateExpression('min(60, ceil(7000 / 40))', ctx), 60);
		assert.equal(evaluateExpression("join(parameters.tags, ',')", ctx), 'a,b');
		assert.equal(evaluateExpression("ifempty(join(parameters.none, ','), omit)", ctx), OMIT);
		assert.deepEqual(evaluateExpression("toCollection(parameters.list, 'key', 'value')", ctx), { k: 'v' });
		assert.equal(evaluateExpression('length(body.data)', ctx), 2);
		assert.equal(evaluateExpression("contains(parameters.tags, 'b')", ctx), true);
		const later = evaluateExpression('addSeconds(now, 3600)', { now: () => new Date('2026-01-01T00:00:00Z') });
		assert.equal(later.toISOString(), '2026-01-01T01:00:00.000Z');
	});

	test('bad expressions fail loudly', () => {
		assert.throws(() => evaluateExpression('nosuch(1)', ctx), ImlError);
		assert.throws(() => evaluateExpression("'open", ctx), ImlError);
		assert.throws(() => evaluateExpression('a b', ctx), ImlError);
	});
});

describe('request runtime', () => {
	let server;
	let url;
	const seen = [];
	let polls = 0;

	before(async () => {
		server = createServer((req, res) => {
			let raw = '';
			req.on('data', (c) => (raw += c));
			req.on('end', () => {
				seen.push({ method: req.method, url: req.url, headers: req.headers, body: raw });
				const json = (status, body, type = 'application/json') => {
					res.writeHead(status, { 'content-type': type });
					res.end(JSON.stringify(body));
				};
				if (req.url.startsWith('/poll')) {
					polls += 1;
					return json(200, { status: polls < 3 ? 'running' : 'completed', polls });
				}
				if (req.url.startsWith('/problem')) {
					return json(422, { type: 'about:blank', title: 'Unprocessable', status: 422, detail: 'title is required', code: 'validation_error' }, 'application/problem+json');
				}
				if (req.url.startsWith('/gone')) return json(404, { detail: 'no such webhook' }, 'application/problem+json');
				if (req.url.startsWith('/pages')) {
					const cursor = new URL(req.url, 'http://x').searchParams.get('cursor');
					const pages = { null: [[1, 2], 'c2'], c2: [[3, 4], 'c3'], c3: [[5], null] };
					const [ids, next] = pages[String(cursor)];
					return json(200, { data: ids.map((id) => ({ id, created_at: new Date(Date.UTC(2026, 0, id)).toISOString() })), next_cursor: next });
				}
				return json(200, { echo: raw ? JSON.parse(raw) : null, url: req.url });
			});
		});
		await new Promise((r) => server.listen(0, '127.0.0.1', r));
		url = `http://127.0.0.1:${server.address().port}`;
	});
	after(() => server.close());

	const base = () => ({
		baseUrl: url,
		headers: { Authorization: 'Bearer {{ifempty(connection.accessToken, connection.apiKey)}}' },
		response: { error: { message: '[{{statusCode}}] {{body.detail}}', 404: { message: 'gone: {{body.detail}}', type: 'DataError' } } },
		log: { sanitize: ['request.headers.authorization'] },
	});

	test('base URL and headers apply, omitted fields are not sent, the key is sanitized in the log', async () => {
		const log = [];
		const r = await execute(
			{ url: '/echo', method: 'POST', body: { a: '{{parameters.a}}', b: '{{ifempty(parameters.b, omit)}}' }, response: { output: '{{body.echo}}' } },
			{ connection: { apiKey: 'ct_secret' }, parameters: { a: 1 } },
			{ base: base(), log },
		);
		assert.deepEqual(r.outputs, [{ a: 1 }]);
		assert.equal(seen.at(-1).headers.authorization, 'Bearer ct_secret');
		assert.equal(seen.at(-1).headers['content-type'], 'application/json');
		assert.equal(log[0].request.headers.Authorization, '******');
		assert.ok(!JSON.stringify(log).includes('ct_secret'));
	});

	test('problem+json becomes a Make error with the detail, per-status overrides win', async () => {
		await assert.rejects(execute({ url: '/problem' }, { connection: {} }, { base: base() }), (e) => e instanceof MakeError && e.message === '[422] title is required' && e.type === 'RuntimeError');
		await assert.rejects(execute({ url: '/gone' }, { connection: {} }, { base: base() }), (e) => e.message === 'gone: no such webhook' && e.type === 'DataError');
	});

	test('response.valid can accept a 404', async () => {
		const r = await execute({ url: '/gone', method: 'DELETE', response: { valid: '{{statusCode < 300 or statusCode = 404}}' } }, { connection: {} }, { base: base() });
		assert.equal(r.statusCode, 404);
	});

	test('repeat runs until its condition is false', async () => {
		polls = 0;
		const r = await execute({ url: '/poll', repeat: { condition: "{{body.status = 'running'}}", delay: 1, limit: 10 }, response: { output: '{{body}}' } }, { connection: {} }, { base: base() });
		assert.equal(r.requests, 3);
		assert.deepEqual(r.outputs, [{ status: 'completed', polls: 3 }]);
	});

	test('repeat stops at its limit', async () => {
		polls = -100;
		const r = await execute({ url: '/poll', repeat: { condition: "{{body.status = 'running'}}", delay: 1, limit: 4 }, response: { output: '{{body.status}}' } }, { connection: {} }, { base: base() });
		assert.equal(r.requests, 4);
		assert.deepEqual(r.outputs, ['running']);
	});

	test('a request-level temp keeps its first value across repeats (the wait deadline)', async () => {
		polls = -100;
		const spec = {
			temp: { deadline: '{{ifempty(temp.deadline, addSeconds(now, parameters.timeout))}}' },
			url: '/poll',
			repeat: { condition: "{{body.status = 'running' and now < temp.deadline}}", delay: 50, limit: 100 },
			response: { output: '{{body.status}}' },
		};
		const r = await execute(spec, { connection: {}, parameters: { timeout: 0.3 } }, { base: base() });
		assert.deepEqual(r.outputs, ['running']);
		assert.ok(r.requests >= 2 && r.requests < 100, `polled ${r.requests} times`);
		assert.ok(r.temp.deadline instanceof Date);
	});

	test('iterate, pagination by cursor and limit', async () => {
		const spec = { url: '/pages', qs: { limit: 2 }, response: { limit: '{{parameters.limit}}', iterate: '{{body.data}}', output: '{{item.id}}' }, pagination: { condition: '{{body.next_cursor}}', qs: { cursor: '{{body.next_cursor}}' } } };
		assert.deepEqual((await execute(spec, { connection: {}, parameters: { limit: 10 } }, { base: base() })).outputs, [1, 2, 3, 4, 5]);
		assert.deepEqual((await execute(spec, { connection: {}, parameters: { limit: 3 } }, { base: base() })).outputs, [1, 2, 3]);
		assert.match(seen.at(-1).url, /cursor=c2/);
	});

	test('condition false skips the request', async () => {
		const before = seen.length;
		const r = await execute({ url: '/echo', condition: '{{temp.code}}' }, { connection: {}, temp: {} }, { base: base() });
		assert.equal(r.skipped, true);
		assert.equal(seen.length, before);
	});

	test('a date trigger outputs each item once, oldest first', async () => {
		const spec = { url: '/pages', response: { iterate: '{{body.data}}', output: '{{item.id}}', trigger: { type: 'date', order: 'desc', id: '{{item.id}}', date: '{{item.created_at}}' } } };
		const state = { date: Date.UTC(2026, 0, 1) };
		// The server returns ids 1, 2 (one page, no pagination directive); 1 is the epoch itself.
		assert.deepEqual(await pollTrigger(spec, { connection: {} }, state, { base: base() }), [2]);
		assert.deepEqual(await pollTrigger(spec, { connection: {} }, state, { base: base() }), []);
	});
});
