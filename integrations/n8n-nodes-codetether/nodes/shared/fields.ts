/** Parsing of the Tags and Output Schema fields, and the trigger's tag filter. */

/** CONTRACT §11: at most 20 tags of 1..64 characters from `[A-Za-z0-9_.:-]`. */
export const TAG_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
export const MAX_TAGS = 20;
/** The service refuses a larger `output_schema`. */
export const MAX_OUTPUT_SCHEMA_BYTES = 16 * 1024;

/**
 * Tags as n8n users type them: a comma- or newline-separated string, or an array (an
 * expression). Blank entries go, duplicates are dropped, the order is kept. Throws on a tag the
 * service would refuse, with a message that names it.
 */
export function parseTags(value: unknown): string[] {
	let parts: unknown[];
	if (value === undefined || value === null || value === '') return [];
	if (Array.isArray(value)) parts = value;
	else parts = String(value).split(/[,\n]/);
	const tags: string[] = [];
	for (const part of parts) {
		const tag = String(part ?? '').trim();
		if (!tag) continue;
		if (!TAG_PATTERN.test(tag)) {
			throw new Error(`Tag "${tag}" is invalid: use 1 to 64 letters, digits or _ . : -`);
		}
		if (!tags.includes(tag)) tags.push(tag);
	}
	if (tags.length > MAX_TAGS) throw new Error(`At most ${MAX_TAGS} tags are allowed, got ${tags.length}`);
	return tags;
}

/**
 * The Output Schema field: a JSON Schema object whose root is `type: "object"`, as text or as an
 * object (n8n hands a JSON field over already parsed when it holds an expression). Empty: none.
 */
export function parseOutputSchema(value: unknown): Record<string, unknown> | undefined {
	if (value === undefined || value === null) return undefined;
	let parsed: unknown = value;
	if (typeof value === 'string') {
		if (!value.trim()) return undefined;
		parsed = parseJson(value);
		if (parsed === INVALID) throw new Error('Output Schema must be valid JSON');
	}
	if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
		throw new Error('Output Schema must be a JSON object (a JSON Schema)');
	}
	const schema = parsed as Record<string, unknown>;
	if (Object.keys(schema).length === 0) return undefined;
	if (schema.type !== 'object') {
		throw new Error('Output Schema must describe an object: its root needs "type": "object"');
	}
	if (Buffer.byteLength(JSON.stringify(schema), 'utf8') > MAX_OUTPUT_SCHEMA_BYTES) {
		throw new Error('Output Schema is larger than 16 KiB');
	}
	return schema;
}

const INVALID = Symbol('invalid JSON');

function parseJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return INVALID;
	}
}

/** The tags of the task an event is about (`data.tags`), or none. */
export function eventTags(event: Record<string, unknown>): string[] {
	const data = event.data as Record<string, unknown> | undefined;
	const tags = data && Array.isArray(data.tags) ? data.tags : [];
	return tags.map((tag) => String(tag));
}

/** The trigger's filter: true when the event's task carries every wanted tag (none wanted: all). */
export function hasAllTags(event: Record<string, unknown>, wanted: string[]): boolean {
	if (wanted.length === 0) return true;
	const have = new Set(eventTags(event));
	return wanted.every((tag) => have.has(tag));
}
