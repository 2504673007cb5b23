// makecomapp.json is complete: the fixed names (CONTRACT §7), files that exist and nothing
// orphaned, the codes each module type needs, references between components, RPC dropdowns,
// groups, and samples that fit their interfaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { APP_DIR, loadManifest, codeFiles, component, exists, readJsonc } from './support/app.mjs';
import { render } from './support/iml.mjs';

const manifest = loadManifest();
const { connection, webhook, module: modules, rpc } = manifest.components;

// The codes each module type must have (Make's editor shows these sections for that type).
const REQUIRED = {
	action: ['communication', 'staticParams', 'mappableParams', 'interface', 'samples'],
	search: ['communication', 'staticParams', 'mappableParams', 'interface', 'samples'],
	universal: ['communication', 'staticParams', 'mappableParams', 'interface', 'samples'],
	trigger: ['communication', 'staticParams', 'interface', 'samples', 'epoch'],
	instant_trigger: ['staticParams', 'interface', 'samples'],
};

test('the component names are the fixed ones', () => {
	assert.deepEqual(Object.keys(connection).sort(), ['codetether', 'codetetherOauth']);
	assert.deepEqual(Object.keys(webhook), ['taskEvents']);
	assert.deepEqual(Object.keys(modules).sort(), [
		'answerQuestion', 'cancelTask', 'createTask', 'getTask', 'makeApiCall', 'searchTasks', 'sendMessage',
		'waitForTask', 'watchNewTasks', 'watchTaskEvents',
	]);
	assert.deepEqual(Object.keys(rpc).sort(), ['listCodebases', 'listModels', 'listTasks', 'resultFields']);
	assert.equal(connection.codetether.connectionType, 'basic');
	assert.equal(connection.codetetherOauth.connectionType, 'oauth');
});

test('the API key connection asks for apiKey and domain', () => {
	const names = component('connection', 'codetether').params.map((p) => p.name);
	assert.deepEqual(names, ['apiKey', 'domain']);
});

test('every file the manifest names exists, and every app file is named', () => {
	const named = new Set(codeFiles().map((f) => f.path));
	for (const path of named) assert.ok(exists(path), `makecomapp.json names ${path}, which does not exist`);
	const onDisk = [];
	const walk = (dir) => {
		for (const name of readdirSync(dir)) {
			const full = join(dir, name);
			if (['node_modules', 'test', '.secrets'].includes(name)) continue;
			if (statSync(full).isDirectory()) walk(full);
			else if (name.endsWith('.iml.json') || name === 'groups.json') onDisk.push(relative(APP_DIR, full));
		}
	};
	walk(APP_DIR);
	for (const path of onDisk) assert.ok(named.has(path), `${path} is not named in makecomapp.json (Make would never deploy it)`);
});

for (const [id, meta] of Object.entries(modules)) {
	test(`module ${id} (${meta.moduleType}) has its required codes`, () => {
		const need = REQUIRED[meta.moduleType];
		assert.ok(need, `unknown module type ${meta.moduleType}`);
		for (const code of need) assert.ok(meta.codeFiles[code], `${id} lacks ${code}`);
		assert.ok(meta.label && meta.description, `${id} needs a label and a description`);
		if (meta.moduleType === 'instant_trigger') assert.ok(webhook[meta.webhook], `${id} names webhook ${meta.webhook}, which does not exist`);
		if (meta.moduleType === 'trigger') {
			const { communication } = component('module', id);
			assert.ok(communication.response.trigger, `${id} needs response.trigger`);
		}
	});
}

test('connection references point at existing connections', () => {
	for (const type of ['module', 'rpc', 'webhook']) {
		for (const [id, meta] of Object.entries(manifest.components[type])) {
			for (const ref of [meta.connection, meta.altConnection]) {
				if (ref != null) assert.ok(connection[ref], `${type} ${id} names connection ${ref}, which does not exist`);
			}
			assert.ok(meta.connection, `${type} ${id} has no connection`);
		}
	}
});

test('every rpc:// dropdown names an existing RPC', () => {
	const refs = [];
	const scan = (v) => {
		if (typeof v === 'string' && v.startsWith('rpc://')) refs.push(v.slice(6).split('?')[0]);
		else if (Array.isArray(v)) v.forEach(scan);
		else if (v && typeof v === 'object') Object.values(v).forEach(scan);
	};
	for (const f of codeFiles()) if (f.path.endsWith('.iml.json')) scan(readJsonc(join(APP_DIR, f.path)));
	assert.ok(refs.length >= 5);
	for (const name of refs) assert.ok(rpc[name], `rpc://${name} is not an RPC of the app`);
	for (const name of Object.keys(rpc)) assert.ok(refs.includes(name), `RPC ${name} feeds no dropdown`);
});

test('groups list every module exactly once', () => {
	const groups = readJsonc(join(APP_DIR, manifest.generalCodeFiles.groups));
	const listed = groups.flatMap((g) => g.modules);
	assert.deepEqual([...listed].sort(), Object.keys(modules).sort());
});

// A dynamic interface entry (`rpc://name`) is what that request-less RPC outputs for a module
// whose parameters are still empty (the result fields collection, without fields yet).
function expandInterface(iface) {
	return iface.flatMap((p) => {
		if (typeof p !== 'string') return [p];
		assert.match(p, /^rpc:\/\/\w+$/);
		const spec = component('rpc', p.slice(6)).communication;
		assert.equal(spec.url, undefined, `${p} is used in an interface and must not call the API`);
		return render(spec.response.iterate, { parameters: {} });
	});
}

function checkSample(sample, iface, where) {
	const names = new Map(expandInterface(iface).map((p) => [p.name, p]));
	for (const [key, value] of Object.entries(sample)) {
		const field = names.get(key);
		assert.ok(field, `${where}: sample field ${key} is not in the interface`);
		if (field.type === 'collection' && value && typeof value === 'object') checkSample(value, field.spec, `${where}.${key}`);
	}
}

for (const [id] of Object.entries(modules)) {
	test(`module ${id}: samples fit the interface, and every parameter the request uses is declared`, () => {
		const codes = component('module', id);
		checkSample(codes.samples, codes.interface, id);
		const declared = new Set([...(codes.staticParams ?? []), ...(codes.mappableParams ?? [])].map((p) => p.name));
		const used = new Set();
		const text = JSON.stringify(codes.communication ?? {}) + JSON.stringify(codes.epoch ?? {});
		for (const m of text.matchAll(/parameters\.(\w+)/g)) used.add(m[1]);
		for (const name of used) assert.ok(declared.has(name), `${id} uses parameters.${name} but declares no such parameter`);
	});
}

test('the OAuth connection uses the code flow on the service and saves the tokens', () => {
	const { communication, defaultScope, scopeList } = component('connection', 'codetetherOauth');
	assert.match(communication.authorize.url, /\/oauth\/authorize$/);
	assert.equal(communication.authorize.qs.response_type, 'code');
	assert.ok(!('code_challenge' in communication.authorize.qs), 'Make is a confidential client: no PKCE');
	assert.match(communication.token.url, /\/oauth\/token$/);
	assert.equal(communication.token.body.grant_type, 'authorization_code');
	assert.equal(communication.refresh.body.grant_type, 'refresh_token');
	assert.ok(communication.token.response.data.accessToken && communication.token.response.data.refreshToken);
	for (const s of defaultScope) assert.ok(scopeList[s], `default scope ${s} is not in the scope list`);
});
