// The app against a real CodeTether: one `codetether dev` on free loopback ports for the file.
//   - contract: every request (method + path) is a route of the service's /openapi.json and every
//     field the app maps exists in that route's request schema;
//   - each module's request rendered from sample inputs by the IML evaluator and sent to the
//     service: create → wait (repeat) → completed, a question answered, RPCs, triggers, errors;
//   - the instant trigger: attach/detach really create/delete the subscription, and the webhook's
//     token condition accepts a real delivery and rejects one without the token.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadManifest, component, base as loadBase } from './support/app.mjs';
import { startDev, startWebhookGateway, until, authorizeInBrowser } from './support/harness.mjs';
import { render } from './support/iml.mjs';
import { execute, pollTrigger, MakeError } from './support/runtime.mjs';

const manifest = loadManifest();
const base = loadBase(manifest);
let dev;
let connection;
let openapi;
const log = [];

const mod = (id) => component('module', id, manifest);
const rpcSpec = (id) => component('rpc', id, manifest).communication;
const run = (spec, parameters, extra = {}) => execute(spec, { connection, parameters, ...extra }, { base, log });
const runModule = async (id, parameters) => (await run(mod(id).communication, parameters)).outputs;

before(async () => {
	dev = await startDev();
	connection = { apiKey: dev.key, domain: dev.url };
	openapi = await (await fetch(`${dev.url}/openapi.json`)).json();
});

after(async () => {
	await dev?.stop();
});

/**
 * A module's interface as Make shows it for these parameters: `rpc://` entries replaced by what
 * the RPC outputs (the dynamic result fields).
 */
async function interfaceFor(id, parameters = {}) {
	const out = [];
	for (const entry of mod(id).interface) {
		if (typeof entry === 'string' && entry.startsWith('rpc://')) out.push(...(await run(rpcSpec(entry.slice(6)), parameters)).outputs);
		else out.push(entry);
	}
	return out;
}

function interfaceNames(id) {
	return new Set(mod(id).interface.filter((p) => typeof p === 'object').map((p) => p.name));
}

async function assertFitsInterface(id, output, parameters = {}) {
	const names = new Set((await interfaceFor(id, parameters)).map((p) => p.name));
	for (const key of Object.keys(output)) assert.ok(names.has(key), `${id} outputs ${key}, which its interface does not show`);
}

// ---- contract -------------------------------------------------------------------------------

function allRequests() {
	const out = [];
	// Several requests in one communication count one by one; request-less ones call nothing.
	const add = (where, spec, kind = 'api') => {
		for (const one of Array.isArray(spec) ? spec : [spec]) if (one.url !== undefined) out.push({ where, spec: one, kind });
	};
	for (const [id, meta] of Object.entries(manifest.components.module)) {
		const codes = component('module', id, manifest);
		if (codes.communication && meta.moduleType !== 'universal') add(`module ${id}`, codes.communication);
		if (codes.epoch) add(`module ${id} epoch`, codes.epoch);
	}
	for (const id of Object.keys(manifest.components.rpc)) add(`rpc ${id}`, rpcSpec(id));
	const hook = component('webhook', 'taskEvents', manifest);
	add('webhook attach', hook.attach);
	add('webhook detach', hook.detach);
	add('connection codetether', component('connection', 'codetether', manifest).communication);
	const oauth = component('connection', 'codetetherOauth', manifest).communication;
	for (const step of ['authorize', 'token', 'refresh', 'info', 'invalidate']) add(`oauth ${step}`, oauth[step], step);
	return out;
}

function pathOf(url) {
	// `{{connection.domain}}`/`{{parameters.domain}}` is the origin; other `{{…}}` are path values.
	return url.replace(/^\{\{(connection|parameters)\.domain\}\}/, '').replace(/\{\{[^}]+\}\}/g, '{}');
}

function findOperation(method, path) {
	for (const [template, ops] of Object.entries(openapi.paths)) {
		const re = new RegExp('^' + template.replace(/\{[^}]+\}/g, '\\{\\}').replace(/[.]/g, '\\.') + '$');
		if (re.test(path) && ops[method.toLowerCase()]) return { template, op: ops[method.toLowerCase()] };
	}
	return null;
}

function resolveRef(schema) {
	let s = schema;
	while (s?.$ref) s = s.$ref.replace('#/', '').split('/').reduce((o, k) => o[k], openapi);
	return s;
}

function bodyProperties(op) {
	const content = resolveRef(op.requestBody)?.content ?? {};
	const schema = resolveRef(Object.values(content)[0]?.schema);
	const props = { ...(schema?.properties ?? {}) };
	for (const part of [...(schema?.allOf ?? []), ...(schema?.anyOf ?? [])]) Object.assign(props, resolveRef(part)?.properties ?? {});
	return props;
}

describe('contract with /openapi.json', () => {
	test('every request of the app is a route of the service', () => {
		const requests = allRequests();
		assert.ok(requests.length >= 18, `found only ${requests.length} requests`);
		for (const { where, spec } of requests) {
			const path = pathOf(spec.url);
			const found = findOperation(spec.method ?? 'GET', path);
			assert.ok(found, `${where}: ${spec.method ?? 'GET'} ${path} is not a route in /openapi.json`);
		}
	});

	test('every mapped body field and query parameter exists in the route schema', () => {
		for (const { where, spec } of allRequests()) {
			const { op } = findOperation(spec.method ?? 'GET', pathOf(spec.url));
			if (spec.body && typeof spec.body === 'object') {
				const props = bodyProperties(op);
				for (const field of Object.keys(spec.body)) assert.ok(props[field], `${where}: body field ${field} is not in the request schema`);
			}
			const queryNames = new Set((op.parameters ?? []).map(resolveRef).filter((p) => p.in === 'query').map((p) => p.name));
			for (const q of Object.keys(spec.qs ?? {})) {
				// /oauth/authorize is RFC 6749's front channel: its query is the OAuth request itself.
				if (where === 'oauth authorize') continue;
				assert.ok(queryNames.has(q), `${where}: query parameter ${q} is not declared by the route`);
			}
		}
	});

	test('every response field the app reads exists in the route\'s success schema', () => {
		const successSchema = (op) => {
			const [, res] = Object.entries(op.responses ?? {}).find(([code]) => /^2\d\d$/.test(code)) ?? [];
			return resolveRef(Object.values(resolveRef(res)?.content ?? {})[0]?.schema);
		};
		const child = (schema, key) => {
			const s = resolveRef(schema);
			if (!s) return undefined;
			if (s.properties?.[key]) return s.properties[key];
			for (const part of [...(s.anyOf ?? []), ...(s.allOf ?? []), ...(s.oneOf ?? [])]) {
				const hit = child(part, key);
				if (hit) return hit;
			}
			return undefined;
		};
		const itemsOf = (schema) => {
			const s = resolveRef(schema);
			return s?.items ?? [...(s?.anyOf ?? [])].map(resolveRef).find((p) => p?.items)?.items;
		};
		const walk = (schema, path, where) => {
			let node = schema;
			for (const key of path) {
				node = child(node, key);
				assert.ok(node, `${where}: ${path.join('.')} is not in the response schema`);
			}
			return node;
		};
		let checked = 0;
		for (const { where, spec } of allRequests()) {
			if (!spec.response || where.startsWith('oauth')) continue;
			const { op } = findOperation(spec.method ?? 'GET', pathOf(spec.url));
			const schema = successSchema(op);
			if (!schema) continue; // 204: nothing is read
			const { error, ...reads } = spec.response;
			const text = JSON.stringify({ reads, pagination: spec.pagination, repeat: spec.repeat });
			const container = /\{\{body\.([\w.]+)\}\}/.exec(JSON.stringify(spec.response.iterate ?? ''))?.[1];
			for (const m of text.matchAll(/\b(body|item)((?:\.\w+)+)/g)) {
				const path = m[2].slice(1).split('.');
				if (m[1] === 'body') walk(schema, path, where);
				else walk(itemsOf(walk(schema, container.split('.'), where)), path, where);
				checked += 1;
			}
		}
		assert.ok(checked >= 15, `only ${checked} response reads checked`);
	});

	test('the API key connection and the webhook subscription fields match the service', () => {
		const hook = component('webhook', 'taskEvents', manifest);
		const { op } = findOperation('POST', '/v1/webhooks');
		assert.ok(bodyProperties(op).header_token, 'POST /v1/webhooks must accept header_token (CONTRACT §3)');
		assert.deepEqual(Object.keys(hook.attach.body).sort(), ['description', 'events', 'header_token', 'url']);
	});
});

// ---- modules --------------------------------------------------------------------------------

describe('modules against codetether dev', () => {
	test('the API key connection is verified with /me; a bad key is a Make error', async () => {
		const spec = component('connection', 'codetether', manifest).communication;
		const ok = await execute(spec, { parameters: { apiKey: dev.key, domain: dev.url } }, { log });
		assert.equal(ok.metadata.value, dev.email);
		assert.ok(ok.uid.startsWith('usr_') || ok.uid.length > 0);
		await assert.rejects(
			execute(spec, { parameters: { apiKey: 'ct_not_a_key', domain: dev.url } }, { log }),
			(e) => e instanceof MakeError && e.type === 'InvalidAccessTokenError' && e.message.startsWith('[401] '),
		);
	});

	test('Create a Task → Wait for a Task (the repeat loop) → completed, then Get a Task', async () => {
		const [created] = await runModule('createTask', {
			title: 'Summarize feedback',
			description: 'SLEEP: 2\nSummarize: the app is slow but lovely',
			model: 'demo',
			agent_type: 'general',
			priority: 2,
			metadata: [{ key: 'source', value: 'make' }],
			codebase_id: '',
			webhook_url: null,
		});
		assert.equal(created.status, 'queued');
		assert.match(created.task_id, /^task_/);
		assert.deepEqual(created.metadata, { source: 'make' });
		assert.equal(created.priority, 2);
		await assertFitsInterface('createTask', created);

		// A 12 s timeout polls with wait=2: the task sleeps 2 s after it starts, so the request repeats.
		const waited = await run(mod('waitForTask').communication, { task_id: created.task_id, timeout: 12 });
		assert.ok(waited.requests >= 2, `expected the repeat loop to poll more than once, polled ${waited.requests}`);
		const [done] = waited.outputs;
		assert.equal(done.status, 'completed');
		assert.match(done.result, /^Demo result for "Summarize feedback": /);
		assert.ok(log.some((e) => e.request.url.endsWith(`/tasks/${created.task_id}?wait=2`)));
		await assertFitsInterface('waitForTask', done);

		const [got] = await runModule('getTask', { task_id: created.task_id });
		assert.equal(got.status, 'completed');
		assert.equal(got.result, done.result);
	});

	test('Create a Task with an output schema and Wait for the result: the typed fields are module output and interface', async () => {
		const schema = {
			type: 'object',
			properties: {
				sentiment: { type: 'string', enum: ['positive', 'neutral', 'negative'], description: 'Overall tone' },
				priority: { type: 'integer', minimum: 1, maximum: 5 },
				needs_reply: { type: 'boolean' },
			},
			required: ['sentiment', 'priority', 'needs_reply'],
			additionalProperties: false,
		};
		const parameters = {
			title: 'Triage',
			description: 'Classify: the app is slow but lovely',
			model: 'demo',
			tags: ['make-structured', 'feedback'],
			output_schema: JSON.stringify(schema, null, 2),
			wait_for_result: true,
			timeout: 60,
		};
		// The interface Make builds from the schema: result_json with the three typed fields.
		const iface = await interfaceFor('createTask', parameters);
		const result = iface.find((p) => p.name === 'result_json');
		assert.deepEqual(result, {
			name: 'result_json',
			type: 'collection',
			label: 'Result (structured)',
			spec: [
				{ name: 'sentiment', label: 'Sentiment', type: 'text', help: 'Overall tone' },
				{ name: 'priority', label: 'Priority', type: 'number' },
				{ name: 'needs_reply', label: 'Needs reply', type: 'boolean' },
			],
		});

		const ran = await run(mod('createTask').communication, parameters);
		assert.equal(ran.outputs.length, 1, 'one bundle');
		const [done] = ran.outputs;
		assert.equal(done.status, 'completed');
		assert.deepEqual(done.tags, ['make-structured', 'feedback']);
		assert.deepEqual(done.output_schema, schema);
		assert.deepEqual(done.result_json, { sentiment: 'positive', priority: 1, needs_reply: true });
		const makeType = { text: 'string', number: 'number', boolean: 'boolean' };
		for (const field of result.spec) assert.equal(typeof done.result_json[field.name], makeType[field.type], field.name);
		await assertFitsInterface('createTask', done, parameters);
		// What was sent: the schema as an object, the tags as a list.
		const sent = log.findLast((e) => e.request.method === 'POST' && e.request.url.endsWith('/v1/automation/tasks'));
		assert.deepEqual(sent.request.body.output_schema, schema);
		assert.deepEqual(sent.request.body.tags, ['make-structured', 'feedback']);

		// Later modules output it too.
		const [got] = await runModule('getTask', { task_id: done.task_id });
		assert.deepEqual(got.result_json, done.result_json);
		await assertFitsInterface('getTask', got);
	});

	test('Create a Task without waiting outputs the queued task; a broken output schema stops before any request', async () => {
		const ran = await run(mod('createTask').communication, { title: 'Plain', description: 'hi', model: 'demo', tags: ['make-plain'] });
		assert.equal(ran.outputs[0].status, 'queued');
		assert.equal(ran.outputs[0].result_json, null);
		assert.deepEqual(ran.outputs[0].tags, ['make-plain']);
		const before = log.length;
		await assert.rejects(run(mod('createTask').communication, { title: 'Bad', description: 'hi', output_schema: '{"type": ' }), /Output schema must be valid JSON/);
		await assert.rejects(run(mod('createTask').communication, { title: 'Bad', description: 'hi', output_schema: '{"type": "array"}' }), /"type": "object"/);
		assert.equal(log.length, before);
		// While the schema is being typed the interface still loads, without result fields.
		const iface = await interfaceFor('createTask', { output_schema: '{"ty' });
		assert.deepEqual(iface.find((p) => p.name === 'result_json').spec, []);
	});

	test('Wait for a Task ends at the timeout with the task as it is', async () => {
		const [created] = await runModule('createTask', { title: 'Long one', description: 'SLEEP: 20', model: 'demo' });
		const waited = await run(mod('waitForTask').communication, { task_id: created.task_id, timeout: 3 });
		// timeout 3 → wait=1 per poll until the deadline kept in temp passes
		assert.ok(['queued', 'running'].includes(waited.outputs[0].status));
		assert.ok(waited.requests >= 2 && waited.requests <= 4, `polled ${waited.requests} times`);
		const [cancelled] = await runModule('cancelTask', { task_id: created.task_id });
		assert.equal(cancelled.status, 'cancelled');
	});

	test('a question: Wait ends on needs_input, Answer a Question resumes the task to completed', async () => {
		const [created] = await runModule('createTask', { title: 'Needs a human', description: 'ASK: Which region should I cover?', model: 'demo' });
		const [asking] = (await run(mod('waitForTask').communication, { task_id: created.task_id, timeout: 60 })).outputs;
		assert.equal(asking.status, 'needs_input');
		assert.equal(asking.required_action.prompt, 'Which region should I cover?');
		assert.match(asking.required_action.id, /^act_/);

		const [answered] = await runModule('answerQuestion', { task_id: created.task_id, message: 'Europe', required_action_id: asking.required_action.id });
		assert.ok(['queued', 'running', 'completed'].includes(answered.status), answered.status);
		await assertFitsInterface('answerQuestion', answered);

		const [done] = (await run(mod('waitForTask').communication, { task_id: created.task_id, timeout: 60 })).outputs;
		assert.equal(done.status, 'completed');
		assert.match(done.result, /noted: Europe/);

		await assert.rejects(
			runModule('answerQuestion', { task_id: created.task_id, message: 'again', required_action_id: asking.required_action.id }),
			(e) => e instanceof MakeError && e.statusCode === 409 && e.message.startsWith('[409] ') && e.message.length > 7,
		);
	});

	test('Send a Message starts a task, then continues it as a follow-up', async () => {
		const [first] = await runModule('sendMessage', { message: 'Hello from Make', model: 'demo', conversation_id: '' });
		assert.equal(first.delivered_as, 'new_task');
		await assertFitsInterface('sendMessage', first);
		await run(mod('waitForTask').communication, { task_id: first.task_id, timeout: 60 });
		const [follow] = await runModule('sendMessage', { message: 'Now shorter', conversation_id: first.task_id });
		assert.equal(follow.delivered_as, 'follow_up');
		assert.equal(follow.task_id, first.task_id);
		assert.notEqual(follow.run_id, first.run_id);
	});

	test('Cancel a Task stops it; cancelling a completed task is a Make error with the detail', async () => {
		const [created] = await runModule('createTask', { title: 'Cancel me', description: 'SLEEP: 30', model: 'demo' });
		const [cancelled] = await runModule('cancelTask', { task_id: created.task_id });
		assert.equal(cancelled.status, 'cancelled');
		const [quick] = await runModule('createTask', { title: 'Quick', description: 'Say hi', model: 'demo' });
		await run(mod('waitForTask').communication, { task_id: quick.task_id, timeout: 60 });
		await assert.rejects(runModule('cancelTask', { task_id: quick.task_id }), (e) => e instanceof MakeError && e.statusCode === 409);
	});

	test('Create a Task with a webhook URL and its events: the URL receives only those', async () => {
		const receiver = await startWebhookGateway({ output: '{{body}}' }, {});
		try {
			const [created] = await runModule('createTask', {
				title: 'Per-task hook', description: 'say hi', model: 'demo',
				webhook_url: receiver.url, webhook_events: ['task.started', 'task.completed'],
			});
			await until('the task.completed delivery', () => receiver.accepted.find((b) => b.event === 'task.completed' && b.task_id === created.task_id));
			assert.deepEqual(receiver.accepted.map((b) => b.event).sort(), ['task.completed', 'task.started']);
		} finally {
			await receiver.close();
		}
	});

	test('a bad request is a Make error carrying the problem detail', async () => {
		await assert.rejects(
			runModule('createTask', { title: 'x', description: 'y', model: 'no-such-model' }),
			(e) => e instanceof MakeError && e.statusCode === 422 && e.type === 'DataError' && /model/i.test(e.message),
		);
		await assert.rejects(runModule('getTask', { task_id: 'task_doesnotexist' }), (e) => e.statusCode === 404 && e.type === 'DataError');
	});

	test('Search Tasks filters by status and honours the limit', async () => {
		const all = await runModule('searchTasks', { status: ['completed'], limit: 50 });
		assert.ok(all.length >= 2);
		assert.ok(all.every((t) => t.status === 'completed'));
		for (const t of all) await assertFitsInterface('searchTasks', t);
		const one = await runModule('searchTasks', { status: ['completed', 'cancelled'], limit: 1 });
		assert.equal(one.length, 1);
		const none = await runModule('searchTasks', { status: ['failed'], limit: 10, created_after: '2000-01-01T00:00:00Z' });
		assert.deepEqual(none, []);
	});

	test('Watch New Tasks: the epoch lists start points, then each new task triggers once', async () => {
		const codes = mod('watchNewTasks');
		const epoch = await run(codes.epoch, {});
		assert.ok(epoch.outputs.length >= 1);
		assert.ok(epoch.outputs.every((o) => o.label && o.date));
		const state = { date: Math.max(...epoch.outputs.map((o) => new Date(o.date).getTime())) };
		const ctx = { connection, parameters: { limit: 20 } };
		assert.deepEqual(await pollTrigger(codes.communication, ctx, state, { base, log }), []);
		const [a] = await runModule('createTask', { title: 'New one A', description: 'hi', model: 'demo' });
		const [b] = await runModule('createTask', { title: 'New one B', description: 'hi', model: 'demo' });
		const fresh = await pollTrigger(codes.communication, ctx, state, { base, log });
		assert.deepEqual(fresh.map((t) => t.task_id), [a.task_id, b.task_id]);
		for (const t of fresh) await assertFitsInterface('watchNewTasks', t);
		assert.deepEqual(await pollTrigger(codes.communication, ctx, state, { base, log }), []);
	});

	test('RPCs feed the dropdowns: models, codebases, recent tasks', async () => {
		const models = (await run(rpcSpec('listModels'), {})).outputs;
		assert.ok(models.some((m) => m.value === 'demo' && m.label === 'demo'));
		assert.ok(models.some((m) => m.label.endsWith(' (unavailable)')));
		const cb = JSON.parse(await dev.cli('codebases', 'create', '--user', dev.email, '--name', 'billing', '--repository-url', dev.repoDir));
		const codebases = (await run(rpcSpec('listCodebases'), {})).outputs;
		assert.ok(codebases.some((c) => c.value === cb.codebase_id && c.label === 'billing'));
		const tasks = (await run(rpcSpec('listTasks'), {})).outputs;
		assert.ok(tasks.length >= 3);
		assert.ok(tasks.every((t) => /^task_/.test(t.value) && / \((queued|running|needs_input|completed|failed|cancelled)\)$/.test(t.label)));
	});

	test('Make an API Call sends an authorized request and outputs status, headers and body', async () => {
		const [me] = await runModule('makeApiCall', { url: '/v1/automation/me', method: 'GET', body: '' });
		assert.equal(me.statusCode, 200);
		assert.equal(me.body.email, dev.email);
		assert.ok(me.headers['x-request-id']);
		const [made] = await runModule('makeApiCall', {
			url: '/v1/automation/tasks',
			method: 'POST',
			body: JSON.stringify({ title: 'Via API call', prompt: 'hello', model: 'demo' }),
		});
		assert.equal(made.statusCode, 201);
		assert.match(made.body.task_id, /^task_/);
	});

	test('the execution log never shows the API key', () => {
		assert.ok(log.length > 20);
		assert.ok(!JSON.stringify(log).includes(dev.key), 'the API key leaked into the sanitized log');
	});
});

// ---- instant trigger --------------------------------------------------------------------------

describe('Watch Task Events (instant trigger on a dedicated webhook)', () => {
	const hook = component('webhook', 'taskEvents', manifest);
	const parameters = { events: ['task.completed', 'task.needs_input'], token: 'make-test-token-0123456789abcdef' };
	let gateway;
	let webhookData;

	before(async () => {
		gateway = await startWebhookGateway(hook.communication, parameters);
	});
	after(async () => {
		await gateway?.close();
	});

	test('attach creates the subscription with the Make URL, the events and a masked token', async () => {
		const attached = await run(hook.attach, parameters, { webhook: { url: gateway.url } });
		webhookData = attached.data;
		assert.match(webhookData.externalHookId, /^whk_/);
		const { status, body } = await dev.api('GET', `/v1/webhooks/${webhookData.externalHookId}`);
		assert.equal(status, 200);
		assert.equal(body.url, gateway.url);
		assert.deepEqual([...body.events].sort(), ['task.completed', 'task.needs_input']);
		assert.equal(body.header_token.name, 'X-CodeTether-Token');
		assert.ok(!JSON.stringify(body).includes(parameters.token), 'the header token must be masked');
		assert.ok(!JSON.stringify(log).includes(parameters.token), 'the header token must be sanitized in the log');
	});

	test('a real delivery carries the token and becomes a bundle', async () => {
		assert.ok(webhookData, 'attach must have run');
		const [created] = await runModule('createTask', { title: 'Hooked', description: 'say hi', model: 'demo' });
		const bundle = await until('the task.completed delivery', () =>
			gateway.accepted.find((b) => b.event === 'task.completed' && b.task_id === created.task_id),
		);
		assert.equal(bundle.data.status, 'completed');
		assert.match(bundle.id, /^evt_/);
		const names = interfaceNames('watchTaskEvents');
		for (const key of Object.keys(bundle)) assert.ok(names.has(key), `event field ${key} is not in the interface`);
	});

	test('a request without the token, or with a wrong one, is ignored', async () => {
		const sample = mod('watchTaskEvents').samples;
		const before = gateway.accepted.length;
		for (const headers of [{}, { 'X-CodeTether-Token': 'wrong-token-wrong-token' }]) {
			const r = await fetch(gateway.url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(sample) });
			assert.equal(r.status, 200);
		}
		assert.equal(gateway.accepted.length, before);
		assert.equal(gateway.rejected.length, 2);
	});

	test('detach deletes the subscription; a second detach (404) is fine', async () => {
		assert.ok(webhookData, 'attach must have run');
		await run(hook.detach, {}, { webhook: webhookData });
		const { status } = await dev.api('GET', `/v1/webhooks/${webhookData.externalHookId}`);
		assert.equal(status, 404);
		const again = await run(hook.detach, {}, { webhook: webhookData });
		assert.equal(again.statusCode, 404);
	});
});

// ---- OAuth 2.0 connection ----------------------------------------------------------------------

describe('the OAuth 2.0 connection on the service\'s authorization server', () => {
	const oauthCodes = component('connection', 'codetetherOauth', manifest);
	const oauthSpec = oauthCodes.communication;
	const redirectUri = 'https://www.make.com/oauth/cb/app';
	const email = 'make-oauth@example.com';
	const password = 'correct horse battery staple';
	let parameters;

	before(async () => {
		await dev.cliWithInput(`${password}\n`, 'users', 'create', email, '--tier', 'pro', '--password-stdin');
		const client = JSON.parse(await dev.cli('oauth-clients', 'create', '--name', 'Make', '--redirect-uri', redirectUri, '--owner', email));
		assert.ok(client.client_secret, 'Make is registered as a confidential client');
		parameters = { domain: dev.url, clientId: client.client_id, clientSecret: client.client_secret };
	});

	test('authorize → token (no PKCE) → info → a module call → refresh → invalidate', async () => {
		const oauth = { redirectUri, scope: oauthCodes.defaultScope };
		const ctx = { parameters, oauth, common: {} };
		const authorize = render({ url: oauthSpec.authorize.url, qs: oauthSpec.authorize.qs }, ctx);
		assert.ok(!('code_challenge' in authorize.qs));
		const { query } = await authorizeInBrowser(`${authorize.url}?${new URLSearchParams(authorize.qs)}`, { email, password });
		const temp = render(oauthSpec.authorize.response.temp, { ...ctx, query });
		assert.ok(temp.code, 'the redirect back to Make carries a code');

		const oauthLog = [];
		const token = await execute(oauthSpec.token, { ...ctx, temp }, { log: oauthLog });
		const data = token.data;
		assert.ok(data.accessToken && data.refreshToken);
		assert.ok(new Date(data.expires).getTime() > Date.now());

		const info = await execute(oauthSpec.info, { ...ctx, data }, { log: oauthLog });
		assert.equal(info.metadata.value, email);

		const oauthConnection = { domain: dev.url, accessToken: data.accessToken };
		const [me] = (await execute(mod('makeApiCall').communication, { connection: oauthConnection, parameters: { url: '/v1/automation/me', method: 'GET' } }, { base, log: oauthLog })).outputs;
		assert.equal(me.body.email, email);
		assert.equal(me.body.auth_method, 'oauth');
		const models = (await execute(rpcSpec('listModels'), { connection: oauthConnection, parameters: {} }, { base, log: oauthLog })).outputs;
		assert.ok(models.some((m) => m.value === 'demo'));

		const refreshed = (await execute(oauthSpec.refresh, { ...ctx, data }, { log: oauthLog })).data;
		assert.ok(refreshed.accessToken && refreshed.accessToken !== data.accessToken);
		assert.ok(refreshed.refreshToken && refreshed.refreshToken !== data.refreshToken);

		await execute(oauthSpec.invalidate, { ...ctx, data: refreshed }, { log: oauthLog });
		await assert.rejects(
			execute(oauthSpec.refresh, { ...ctx, data: refreshed }, { log: oauthLog }),
			(e) => e instanceof MakeError && e.statusCode === 400 && e.type === 'InvalidAccessTokenError' && /invalid_grant|revoked|invalid/i.test(e.message),
		);
		const logged = JSON.stringify(oauthLog);
		for (const secret of [parameters.clientSecret, data.accessToken, data.refreshToken, refreshed.refreshToken, temp.code]) {
			assert.ok(!logged.includes(secret), 'a secret reached the execution log');
		}
	});
});
