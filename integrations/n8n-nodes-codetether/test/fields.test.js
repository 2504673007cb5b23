// Unit tests of the Tags and Output Schema fields and of the trigger's tag filter.
const test = require('node:test');
const assert = require('node:assert/strict');

const { parseTags, parseOutputSchema, hasAllTags, MAX_TAGS } = require('../dist/nodes/shared/fields');

test('tags: comma or newline separated, trimmed, blanks and repeats dropped, order kept', () => {
	assert.deepEqual(parseTags(' feedback, batch:42\nteam.a ,, feedback '), ['feedback', 'batch:42', 'team.a']);
	assert.deepEqual(parseTags(['x', ' y ', 'x']), ['x', 'y']);
	assert.deepEqual(parseTags(''), []);
	assert.deepEqual(parseTags(undefined), []);
});

test('tags the service would refuse are named in the error', () => {
	assert.throws(() => parseTags('ok, not ok'), /Tag "not ok" is invalid/);
	assert.throws(() => parseTags('a'.repeat(65)), /is invalid/);
	const many = Array.from({ length: MAX_TAGS + 1 }, (_, i) => `t${i}`).join(',');
	assert.throws(() => parseTags(many), /At most 20 tags/);
	assert.equal(parseTags(Array.from({ length: MAX_TAGS }, (_, i) => `t${i}`)).length, MAX_TAGS);
});

test('output schema: JSON text or an object; empty means none', () => {
	const schema = { type: 'object', properties: { sentiment: { type: 'string' } }, required: ['sentiment'] };
	assert.deepEqual(parseOutputSchema(JSON.stringify(schema)), schema);
	assert.deepEqual(parseOutputSchema(schema), schema);
	assert.equal(parseOutputSchema(''), undefined);
	assert.equal(parseOutputSchema('  '), undefined);
	assert.equal(parseOutputSchema({}), undefined);
	assert.equal(parseOutputSchema(undefined), undefined);
});

test('output schema: bad JSON, a non-object root and more than 16 KiB are refused', () => {
	assert.throws(() => parseOutputSchema('{"type": '), /valid JSON/);
	assert.throws(() => parseOutputSchema('[1]'), /JSON object/);
	assert.throws(() => parseOutputSchema({ type: 'array', items: {} }), /"type": "object"/);
	const big = { type: 'object', description: 'x'.repeat(17 * 1024) };
	assert.throws(() => parseOutputSchema(big), /16 KiB/);
});

test('trigger filter: an event passes when its task has every wanted tag', () => {
	const event = { event: 'task.completed', data: { task_id: 'task_1', tags: ['feedback', 'batch:42'] } };
	assert.equal(hasAllTags(event, []), true);
	assert.equal(hasAllTags(event, ['feedback']), true);
	assert.equal(hasAllTags(event, ['feedback', 'batch:42']), true);
	assert.equal(hasAllTags(event, ['feedback', 'batch:43']), false);
	assert.equal(hasAllTags({ event: 'task.completed', data: { task_id: 'task_2' } }, ['feedback']), false);
	assert.equal(hasAllTags({ event: 'ping' }, ['feedback']), false);
});
