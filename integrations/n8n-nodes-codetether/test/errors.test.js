// Unit tests of error mapping: problem+json → NodeApiError, and bounded 429 retries.
const test = require('node:test');
const assert = require('node:assert/strict');
const { NodeApiError } = require('n8n-workflow');

const { summarizeProblem, retryAfterSeconds, MAX_RATE_LIMIT_RETRIES } = require('../dist/nodes/shared/problem');
const { codeTetherRequest } = require('../dist/nodes/CodeTether/transport');

const problem = {
	type: 'https://docs.codetether.io/errors/model_unavailable',
	title: 'Model unavailable',
	status: 422,
	detail: 'The model gpt-4o has no provider credentials on this server',
	code: 'model_unavailable',
	request_id: 'req_123',
};

test('problem+json shows its detail as the message and its code in the description', () => {
	const summary = summarizeProblem(422, problem);
	assert.equal(summary.message, problem.detail);
	assert.equal(summary.code, 'model_unavailable');
	assert.equal(summary.httpCode, '422');
	assert.match(summary.description, /code: model_unavailable/);
	assert.match(summary.description, /request req_123/);
});

test('validation errors list their fields; string and empty bodies still give a message', () => {
	const summary = summarizeProblem(422, {
		...problem,
		code: 'validation_error',
		errors: [{ loc: ['body', 'title'], msg: 'Field required' }],
	});
	assert.match(summary.description, /body\.title: Field required/);
	assert.equal(summarizeProblem(502, '<html>bad gateway</html>').message, '<html>bad gateway</html>');
	assert.equal(summarizeProblem(503, JSON.stringify(problem)).code, 'model_unavailable');
	assert.deepEqual(
		[summarizeProblem(500, undefined).message, summarizeProblem(500, undefined).code],
		['CodeTether answered HTTP 500', 'http_500'],
	);
});

test('Retry-After in seconds or as a date is honoured, within bounds', () => {
	const now = Date.parse('2026-01-01T00:00:00Z');
	assert.equal(retryAfterSeconds('3', 0, now), 3);
	assert.equal(retryAfterSeconds(undefined, 0, now), 1);
	assert.equal(retryAfterSeconds('0', 0, now), 1);
	assert.equal(retryAfterSeconds('Thu, 01 Jan 2026 00:00:07 GMT', 0, now), 7);
	assert.equal(retryAfterSeconds('3600', 0, now), undefined, 'too long a wait fails instead');
	assert.equal(retryAfterSeconds('1', MAX_RATE_LIMIT_RETRIES, now), undefined, 'bounded attempts');
});

function fakeContext(responses) {
	const requests = [];
	const node = { id: '1', name: 'CodeTether', type: 'n8n-nodes-codetether.codeTether', typeVersion: 1, position: [0, 0], parameters: {} };
	return {
		requests,
		getNodeParameter: (name, _i, fallback) => (name === 'authentication' ? 'apiKey' : fallback),
		getCredentials: async () => ({ domain: 'http://127.0.0.1:9/', apiKey: 'ct_test' }),
		getNode: () => node,
		helpers: {
			httpRequestWithAuthentication: async (type, options) => {
				requests.push({ type, ...options });
				return responses.shift();
			},
		},
	};
}

test('the transport throws NodeApiError with the problem detail and code', async () => {
	const ctx = fakeContext([{ statusCode: 422, headers: {}, body: problem }]);
	await assert.rejects(codeTetherRequest.call(ctx, 'POST', '/automation/tasks', { body: { title: 'x' } }), (error) => {
		assert.ok(error instanceof NodeApiError);
		assert.equal(error.message, problem.detail);
		assert.match(error.description, /code: model_unavailable/);
		assert.equal(error.httpCode, '422');
		return true;
	});
	assert.equal(ctx.requests[0].type, 'codeTetherApi');
	assert.equal(ctx.requests[0].url, 'http://127.0.0.1:9/v1/automation/tasks');
});

test('the transport waits for Retry-After on 429 and retries', async () => {
	const ctx = fakeContext([
		{ statusCode: 429, headers: { 'retry-after': '1' }, body: { code: 'rate_limited', detail: 'slow down' } },
		{ statusCode: 200, headers: {}, body: { task_id: 'task_1' } },
	]);
	const { body } = await codeTetherRequest.call(ctx, 'GET', '/automation/tasks/task_1');
	assert.equal(body.task_id, 'task_1');
	assert.equal(ctx.requests.length, 2);
});

test('the transport gives up after the bounded number of 429s', async () => {
	const limited = { statusCode: 429, headers: { 'retry-after': '0' }, body: { code: 'rate_limited', detail: 'slow down' } };
	const ctx = fakeContext(Array.from({ length: MAX_RATE_LIMIT_RETRIES + 1 }, () => ({ ...limited })));
	await assert.rejects(codeTetherRequest.call(ctx, 'GET', '/automation/tasks'), (error) => {
		assert.equal(error.message, 'slow down');
		assert.match(error.description, /code: rate_limited/);
		return true;
	});
	assert.equal(ctx.requests.length, MAX_RATE_LIMIT_RETRIES + 1);
});

test('allowed statuses are handed back instead of thrown (404 on unsubscribe)', async () => {
	const ctx = fakeContext([{ statusCode: 404, headers: {}, body: { code: 'not_found' } }]);
	const { statusCode } = await codeTetherRequest.call(ctx, 'DELETE', '/webhooks/whk_1', { allowStatuses: [404] });
	assert.equal(statusCode, 404);
});
