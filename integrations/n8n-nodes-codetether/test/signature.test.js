// Unit tests of the trigger's delivery check (run on the built package: `npm test`).
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { verifyDelivery } = require('../dist/nodes/shared/signature');

const secret = 'whsec_' + Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
const body = Buffer.from('{"id":"evt_1","event":"task.completed","task_id":"task_1","data":{"x":"é"}}');
const now = 1_800_000_000;

function sign(raw, { ts = now, key = secret, id = 'evt_1' } = {}) {
	const standardKey = key.startsWith('whsec_') ? Buffer.from(key.slice(6), 'base64') : Buffer.from(key);
	return {
		'x-codetether-signature': 'sha256=' + crypto.createHmac('sha256', key).update(raw).digest('hex'),
		'x-codetether-timestamp': String(ts),
		'webhook-id': id,
		'webhook-timestamp': String(ts),
		'webhook-signature':
			'v1,' + crypto.createHmac('sha256', standardKey).update(`${id}.${ts}.`).update(raw).digest('base64'),
	};
}

test('a genuine delivery passes', () => {
	assert.deepEqual(verifyDelivery(secret, sign(body), body, now), { valid: true });
});

test('a rotation header with several v1 values passes when one matches', () => {
	const headers = sign(body);
	headers['webhook-signature'] = `v1,${Buffer.alloc(32).toString('base64')} ${headers['webhook-signature']}`;
	assert.equal(verifyDelivery(secret, headers, body, now).valid, true);
});

test('a secret without the whsec_ prefix is used as bytes for both signatures', () => {
	const plain = 'a-secret-the-user-chose-1234';
	assert.equal(verifyDelivery(plain, sign(body, { key: plain }), body, now).valid, true);
});

test('unsigned deliveries are refused', () => {
	const result = verifyDelivery(secret, { 'content-type': 'application/json' }, body, now);
	assert.equal(result.valid, false);
	assert.match(result.reason, /missing X-CodeTether-Signature/);
});

test('a body changed after signing is refused', () => {
	const tampered = Buffer.from(body.toString().replace('task_1', 'task_2'));
	assert.equal(verifyDelivery(secret, sign(body), tampered, now).valid, false);
});

test('a signature made with another secret is refused', () => {
	const other = 'whsec_' + Buffer.from('another-secret-another-secret!!!').toString('base64');
	const result = verifyDelivery(secret, sign(body, { key: other }), body, now);
	assert.deepEqual(result, { valid: false, reason: 'X-CodeTether-Signature does not match' });
});

test('stale and future timestamps are refused; the edge of the window passes', () => {
	assert.equal(verifyDelivery(secret, sign(body, { ts: now - 301 }), body, now).reason, 'timestamp outside the allowed window');
	assert.equal(verifyDelivery(secret, sign(body, { ts: now + 301 }), body, now).valid, false);
	assert.equal(verifyDelivery(secret, sign(body, { ts: now - 300 }), body, now).valid, true);
});

test('an old delivery replayed with a fresh timestamp is refused by the Standard Webhooks signature', () => {
	const old = sign(body, { ts: now - 3600 });
	const replay = { ...old, 'x-codetether-timestamp': String(now), 'webhook-timestamp': String(now) };
	assert.deepEqual(verifyDelivery(secret, replay, body, now), {
		valid: false,
		reason: 'webhook-signature does not match',
	});
});

test('a malformed timestamp or a missing stored secret is refused', () => {
	const headers = { ...sign(body), 'x-codetether-timestamp': 'yesterday', 'webhook-timestamp': 'yesterday' };
	assert.equal(verifyDelivery(secret, headers, body, now).valid, false);
	assert.equal(verifyDelivery('', sign(body), body, now).valid, false);
});
