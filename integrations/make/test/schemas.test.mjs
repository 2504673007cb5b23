// Every IML JSON file of the app (and makecomapp.json) validates against Make's own JSON Schemas,
// chosen by file name exactly as the Make Apps Editor does (its file map in ../shared/make-schemas).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join, basename, resolve } from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { APP_DIR, REPO_ROOT, codeFiles, readJsonc } from './support/app.mjs';

// The schemas live beside the clone (never copied into the project); MAKE_SCHEMAS_DIR overrides.
const SCHEMAS_DIR = resolve(process.env.MAKE_SCHEMAS_DIR ?? join(REPO_ROOT, '..', 'shared', 'make-schemas'));
const SCHEMA_BASE = 'https://schemas.make.local/';

function globToRegExp(glob) {
	// The editor's fileMatch globs: `*` within a name, `**/` across folders.
	const src = glob
		.split('**/')
		.map((part) => part.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*'))
		.join('(?:.*/)?');
	return new RegExp(`(^|/)${src}$`);
}

// Without the schemas (a clone with nothing beside it) these tests skip with the reason printed;
// in CI (CI=true) the schemas must be there, so a missing folder fails instead of hiding.
const MISSING_SCHEMAS = existsSync(join(SCHEMAS_DIR, 'file-map.json'))
	? null
	: `Make's JSON Schemas are not at ${SCHEMAS_DIR} (the shared folder beside the clone, or MAKE_SCHEMAS_DIR)`;

function loadValidators() {
	// Make's patterns are ECMA-262 regexes without the unicode flag (`\-` is legal there).
	const ajv = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false });
	addFormats(ajv);
	for (const name of readdirSync(SCHEMAS_DIR).filter((n) => n.endsWith('.json') && n !== 'file-map.json')) {
		const schema = readJsonc(join(SCHEMAS_DIR, name));
		delete schema.$schema;
		ajv.addSchema(schema, SCHEMA_BASE + name);
	}
	const map = readJsonc(join(SCHEMAS_DIR, 'file-map.json')).map((entry) => ({
		patterns: entry.fileMatch.map(globToRegExp),
		schema: entry.schema,
	}));
	return { ajv, map };
}

// The section each local code type is deployed to (its name in Make's online editor, e.g.
// `parameters.imljson`). Local names the file map lacks (`*.static-params.iml.json`, a module's
// `*.scope.iml.json`) are validated by the schema of that online name.
const ONLINE_NAME = {
	communication: 'api', params: 'parameters', staticParams: 'parameters', mappableParams: 'expect',
	interface: 'interface', samples: 'samples', scope: 'scope', requiredScope: 'scope', defaultScope: 'scope',
	scopeList: 'scopes', epoch: 'epoch', attach: 'attach', detach: 'detach', update: 'update', base: 'base',
	common: 'common',
};

function schemasFor(map, file) {
	const byName = (name) => [...new Set(map.filter((m) => m.patterns.some((re) => re.test(name))).map((m) => m.schema))];
	const hits = byName(file.path);
	if (hits.length || !ONLINE_NAME[file.codeType]) return hits;
	return byName(`${ONLINE_NAME[file.codeType]}.imljson`);
}

if (MISSING_SCHEMAS && process.env.CI) {
	test('Make schemas are present in CI', () => assert.fail(MISSING_SCHEMAS));
} else if (MISSING_SCHEMAS) {
	console.log(`# skipping the Make schema tests: ${MISSING_SCHEMAS}`);
	test('every IML JSON file validates against Make schemas', { skip: MISSING_SCHEMAS }, () => {});
} else {
	const { ajv, map } = loadValidators();
	const files = codeFiles();

	test('the schema folder holds every schema the file map names', () => {
		for (const entry of map) {
			assert.ok(ajv.getSchema(SCHEMA_BASE + entry.schema), `file-map names ${entry.schema}, which is missing`);
		}
	});

	test('makecomapp.json validates against makecomapp.schema.json', () => {
		const validate = ajv.getSchema(SCHEMA_BASE + 'makecomapp.schema.json');
		const ok = validate(readJsonc(join(APP_DIR, 'makecomapp.json')));
		assert.ok(ok, ajv.errorsText(validate.errors, { separator: '\n' }));
	});

	test('every IML JSON file has a schema in the file map', () => {
		const imlFiles = files.filter((f) => f.path.endsWith('.iml.json') || basename(f.path) === 'groups.json');
		assert.ok(imlFiles.length > 60, `expected the whole app, found ${imlFiles.length} files`);
		for (const f of imlFiles) {
			assert.ok(schemasFor(map, f).length > 0, `${f.path}: no schema matches its name`);
		}
	});

	for (const f of files) {
		const schemas = schemasFor(map, f);
		if (!schemas.length) continue;
		test(`${f.path} validates against ${schemas.join(', ')}`, () => {
			const data = readJsonc(join(APP_DIR, f.path));
			for (const name of schemas) {
				const validate = ajv.getSchema(SCHEMA_BASE + name);
				assert.ok(validate(data), `${f.path} against ${name}:\n${ajv.errorsText(validate.errors, { separator: '\n' })}`);
			}
		});
	}
}
