// Loads the app as Make's local-development tooling sees it: makecomapp.json and the code files
// it names (IML JSON is JSONC: comments are allowed).
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, printParseErrorCode } from 'jsonc-parser';
import { registerFunctions } from './iml.mjs';

export const APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const REPO_ROOT = resolve(APP_DIR, '..', '..');

export function readJsonc(path) {
	const errors = [];
	const value = parse(readFileSync(path, 'utf8'), errors, { allowTrailingComma: false });
	if (errors.length) {
		const list = errors.map((e) => `${printParseErrorCode(e.error)} at offset ${e.offset}`).join(', ');
		throw new Error(`${path}: ${list}`);
	}
	return value;
}

export function loadManifest() {
	const manifest = readJsonc(join(APP_DIR, 'makecomapp.json'));
	registerFunctions(customFunctions(manifest));
	return manifest;
}

/**
 * The app's custom IML functions (JavaScript, one function per component named like it), as
 * Make runs them: each file defines the function; nothing else from it is visible.
 */
export function customFunctions(manifest) {
	const out = {};
	for (const [name, meta] of Object.entries(manifest.components.function ?? {})) {
		const code = readFileSync(join(APP_DIR, meta.codeFiles.code), 'utf8');
		out[name] = new Function(`${code}\nreturn ${name};`)();
	}
	return out;
}

/** Every code file named by the manifest: {owner, componentType, componentId, codeType, path}. */
export function codeFiles(manifest = loadManifest()) {
	const out = [];
	for (const [codeType, path] of Object.entries(manifest.generalCodeFiles)) {
		if (path !== null) out.push({ owner: 'app', componentType: 'app', componentId: null, codeType, path });
	}
	for (const [componentType, components] of Object.entries(manifest.components)) {
		for (const [componentId, meta] of Object.entries(components)) {
			for (const [codeType, path] of Object.entries(meta?.codeFiles ?? {})) {
				if (path !== null) out.push({ owner: `${componentType}:${componentId}`, componentType, componentId, codeType, path });
			}
		}
	}
	return out;
}

/** One component's code, parsed: {communication, params, ...} (missing codes are undefined). */
export function component(componentType, componentId, manifest = loadManifest()) {
	const meta = manifest.components[componentType]?.[componentId];
	if (!meta) throw new Error(`no ${componentType} ${componentId} in makecomapp.json`);
	const codes = { meta };
	for (const [codeType, path] of Object.entries(meta.codeFiles)) {
		if (path === null) continue;
		codes[codeType] = path.endsWith('.js') ? readFileSync(join(APP_DIR, path), 'utf8') : readJsonc(join(APP_DIR, path));
	}
	return codes;
}

export function base(manifest = loadManifest()) {
	return readJsonc(join(APP_DIR, manifest.generalCodeFiles.base));
}

export function exists(relPath) {
	return existsSync(join(APP_DIR, relPath));
}
