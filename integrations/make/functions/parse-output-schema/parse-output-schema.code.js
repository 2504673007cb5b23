// The Output schema field (JSON text) as the object the API takes; empty text gives null.
function parseOutputSchema(text) {
	if (text === undefined || text === null) return null;
	if (typeof text === 'object') return text;
	var source = String(text).trim();
	if (!source) return null;
	var schema;
	try {
		schema = JSON.parse(source);
	} catch (e) {
		throw new Error('Output schema must be valid JSON (a JSON Schema object).');
	}
	if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
		throw new Error('Output schema must be a JSON object (a JSON Schema).');
	}
	if (schema.type !== 'object') {
		throw new Error('Output schema must describe an object: its root needs "type": "object".');
	}
	return schema;
}
