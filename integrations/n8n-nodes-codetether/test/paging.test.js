// Unit tests of cursor paging for Get Many.
const test = require('node:test');
const assert = require('node:assert/strict');

const { collectPages, MAX_PAGE_SIZE } = require('../dist/nodes/shared/paging');

function fakeApi(total) {
	const rows = Array.from({ length: total }, (_, i) => ({ task_id: `task_${i}` }));
	const calls = [];
	const fetchPage = async (size, cursor) => {
		calls.push({ size, cursor });
		const start = cursor ? Number(cursor) : 0;
		const data = rows.slice(start, start + size);
		const next = start + size < rows.length ? String(start + size) : null;
		return { data, next_cursor: next };
	};
	return { fetchPage, calls };
}

test('return all follows next_cursor to the end with full pages', async () => {
	const api = fakeApi(250);
	const items = await collectPages(api.fetchPage);
	assert.equal(items.length, 250);
	assert.equal(items[249].task_id, 'task_249');
	assert.deepEqual(api.calls, [
		{ size: MAX_PAGE_SIZE, cursor: undefined },
		{ size: MAX_PAGE_SIZE, cursor: '100' },
		{ size: MAX_PAGE_SIZE, cursor: '200' },
	]);
});

test('a limit asks only for what is missing and stops there', async () => {
	const api = fakeApi(250);
	const items = await collectPages(api.fetchPage, 130);
	assert.equal(items.length, 130);
	assert.deepEqual(api.calls, [
		{ size: 100, cursor: undefined },
		{ size: 30, cursor: '100' },
	]);
});

test('a small limit costs one small request', async () => {
	const api = fakeApi(250);
	assert.equal((await collectPages(api.fetchPage, 5)).length, 5);
	assert.deepEqual(api.calls, [{ size: 5, cursor: undefined }]);
});

test('an empty list and a repeated cursor both end the loop', async () => {
	assert.deepEqual(await collectPages(fakeApi(0).fetchPage), []);
	let calls = 0;
	const loop = async () => {
		calls++;
		return { data: [{ task_id: 'x' }], next_cursor: 'same' };
	};
	assert.equal((await collectPages(loop)).length, 2);
	assert.equal(calls, 2);
});
