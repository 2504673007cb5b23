// The module interface of a structured result: one `result_json` collection whose fields are the
// Output schema's properties, typed for Make (nested objects and arrays of objects included).
// A schema that is empty or does not parse yet gives the collection without fields.
function resultInterface(text) {
	var TYPES = { string: 'text', integer: 'number', number: 'number', boolean: 'boolean' };
	var FORMATS = { 'date-time': 'date', date: 'date', uri: 'url', email: 'email' };
	var schema = null;
	try {
		schema = typeof text === 'object' ? text : JSON.parse(String(text || '').trim() || 'null');
	} catch (e) {
		schema = null;
	}
	function label(name, spec) {
		if (spec && spec.title) return String(spec.title);
		var words = String(name).replace(/[_-]+/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').trim();
		return words.charAt(0).toUpperCase() + words.slice(1);
	}
	function single(spec) {
		var type = spec && spec.type;
		if (Array.isArray(type)) {
			var rest = type.filter(function (t) { return t !== 'null'; });
			type = rest.length === 1 ? rest[0] : undefined;
		}
		return type;
	}
	function field(name, spec, depth) {
		spec = spec && typeof spec === 'object' ? spec : {};
		var type = single(spec);
		var out = { name: name, label: label(name, spec) };
		if (type === 'object') {
			out.type = 'collection';
			out.spec = depth < 3 ? fields(spec.properties, depth + 1) : [];
		} else if (type === 'array') {
			out.type = 'array';
			var items = spec.items && typeof spec.items === 'object' ? spec.items : {};
			if (single(items) === 'object') out.spec = fields(items.properties, depth + 1);
			else out.spec = { type: TYPES[single(items)] || 'any' };
		} else if (type === 'string' && FORMATS[spec.format]) {
			out.type = FORMATS[spec.format];
		} else {
			out.type = TYPES[type] || 'any';
		}
		if (spec.description) out.help = String(spec.description);
		return out;
	}
	function fields(properties, depth) {
		var list = [];
		if (!properties || typeof properties !== 'object') return list;
		Object.keys(properties).forEach(function (name) {
			list.push(field(name, properties[name], depth));
		});
		return list;
	}
	var props = schema && typeof schema === 'object' && !Array.isArray(schema) ? schema.properties : null;
	return [{ name: 'result_json', type: 'collection', label: 'Result (structured)', spec: fields(props, 1) }];
}
