'use strict';

// Structured results and tags (CONTRACT §11): the Output Schema field, the output fields it
// implies for later steps (`result_json__<name>`), and tags as Zapier sends them.

// What the service accepts for a tag, and how many.
const TAG_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_TAGS = 20;
const MAX_SCHEMA_BYTES = 16 * 1024;

// Zapier's field types for a JSON Schema property type (the rest are offered as text).
const ZAPIER_TYPES = { string: 'string', integer: 'integer', number: 'number', boolean: 'boolean' };

class FieldError extends Error {}

// Tags from a Zapier list field (an array) or a comma-separated string (mapped from a step).
const parseTags = (value) => {
  if (value === undefined || value === null || value === '') return [];
  const parts = Array.isArray(value) ? value.flatMap((v) => String(v ?? '').split(',')) : String(value).split(',');
  const tags = [];
  for (const part of parts) {
    const tag = part.trim();
    if (!tag) continue;
    if (!TAG_PATTERN.test(tag)) throw new FieldError(`Tag "${tag}" is invalid: use 1 to 64 letters, digits or _ . : -`);
    if (!tags.includes(tag)) tags.push(tag);
  }
  if (tags.length > MAX_TAGS) throw new FieldError(`At most ${MAX_TAGS} tags are allowed, got ${tags.length}.`);
  return tags;
};

// The Output Schema field: JSON text (or an object, from a mapped step); empty means none.
const parseOutputSchema = (value) => {
  if (value === undefined || value === null) return undefined;
  let schema = value;
  if (typeof value === 'string') {
    if (!value.trim()) return undefined;
    try {
      schema = JSON.parse(value);
    } catch (err) {
      throw new FieldError('Output Schema must be valid JSON (a JSON Schema object).');
    }
  }
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new FieldError('Output Schema must be a JSON object (a JSON Schema).');
  }
  if (Object.keys(schema).length === 0) return undefined;
  if (schema.type !== 'object') throw new FieldError('Output Schema must describe an object: its root needs "type": "object".');
  if (Buffer.byteLength(JSON.stringify(schema), 'utf8') > MAX_SCHEMA_BYTES) {
    throw new FieldError('Output Schema is larger than 16 KiB.');
  }
  return schema;
};

const humanize = (name) =>
  String(name)
    .replace(/[_-]+/g, ' ')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .trim()
    .replace(/^./, (c) => c.toUpperCase());

// The fields a structured result adds to the item, in Zapier's flattened form: one per
// top-level property (nested objects one level down), typed where Zapier has the type.
const resultFields = (schema) => {
  const fields = [];
  const walk = (properties, prefix, labelPrefix) => {
    for (const [name, prop] of Object.entries(properties || {})) {
      const spec = prop && typeof prop === 'object' ? prop : {};
      const types = Array.isArray(spec.type) ? spec.type.filter((t) => t !== 'null') : [spec.type];
      const type = types.length === 1 ? types[0] : undefined;
      const label = `${labelPrefix}${spec.title || humanize(name)}`;
      if (type === 'object' && spec.properties && prefix.split('__').length < 3) {
        walk(spec.properties, `${prefix}${name}__`, `${label}: `);
        continue;
      }
      const field = { key: `${prefix}${name}`, label };
      if (ZAPIER_TYPES[type]) field.type = ZAPIER_TYPES[type];
      if (Array.isArray(spec.enum) && spec.enum.length) field.helpText = `One of: ${spec.enum.join(', ')}`;
      else if (spec.description) field.helpText = String(spec.description);
      fields.push(field);
    }
  };
  walk(schema && schema.properties, 'result_json__', 'Result: ');
  return fields;
};

// outputFields entry: what later steps can map, from the schema in this step's input. A schema
// that does not parse yet (the user is still typing it) adds nothing rather than failing.
const outputFieldsFromSchema = async (z, bundle) => {
  try {
    const schema = parseOutputSchema(bundle.inputData && bundle.inputData.output_schema);
    return schema ? resultFields(schema) : [];
  } catch (err) {
    if (err instanceof FieldError) return [];
    throw err;
  }
};

// Does the task carry every wanted tag? (none wanted: yes)
const hasAllTags = (task, wanted) => {
  if (!wanted.length) return true;
  const have = new Set(Array.isArray(task && task.tags) ? task.tags : []);
  return wanted.every((tag) => have.has(tag));
};

module.exports = { FieldError, parseTags, parseOutputSchema, resultFields, outputFieldsFromSchema, hasAllTags, TAG_PATTERN, MAX_TAGS };
