'use strict';

// Create Task. With "Wait for the Result" the step pauses: the task is created with Zapier's
// callback URL as its callback_url, CodeTether POSTs the terminal event there exactly once, and
// performResume returns the finished task. While Zapier loads a sample it long-polls instead.

const { apiUrl, TERMINAL_STATUSES } = require('../lib/config');
const { toItem, sampleWith, TASK_OUTPUT_FIELDS } = require('../lib/task');
const { FieldError, parseTags, parseOutputSchema, outputFieldsFromSchema } = require('../lib/fields');

// How long a sample load may hold the request in total (Zapier allows about 30 s per call).
const SAMPLE_WAIT_SECONDS = 25;

const taskBody = (inputData) => {
  const body = { title: inputData.title, prompt: inputData.prompt };
  for (const key of ['model', 'agent_type', 'codebase_id']) {
    if (inputData[key]) body[key] = inputData[key];
  }
  if (inputData.priority !== undefined && inputData.priority !== null && inputData.priority !== '') {
    body.priority = parseInt(inputData.priority, 10);
  }
  if (inputData.metadata && typeof inputData.metadata === 'object' && Object.keys(inputData.metadata).length) {
    body.metadata = inputData.metadata;
  }
  if (inputData.reference) {
    body.metadata = { ...(body.metadata || {}), zapier_reference: inputData.reference };
  }
  const tags = parseTags(inputData.tags);
  if (tags.length) body.tags = tags;
  const schema = parseOutputSchema(inputData.output_schema);
  if (schema) body.output_schema = schema;
  return body;
};

const createTask = async (z, inputData, extra = {}) => {
  let body;
  try {
    body = { ...taskBody(inputData), ...extra };
  } catch (err) {
    // A mistake in the user's own input: say so, and do not count it against the app.
    if (err instanceof FieldError) throw new z.errors.Error(err.message, 'invalid_input', 400);
    throw err;
  }
  const headers = {};
  // The same reference always maps to the same task (the API replays the first answer).
  if (inputData.reference) headers['Idempotency-Key'] = `zapier-${inputData.reference}`;
  const response = await z.request({
    url: apiUrl('/v1/automation/tasks'),
    method: 'POST',
    headers,
    body,
  });
  return response.data;
};

const waitForTask = async (z, taskId, budgetSeconds) => {
  const deadline = Date.now() + budgetSeconds * 1000;
  let task;
  do {
    const left = Math.max(1, Math.min(20, Math.floor((deadline - Date.now()) / 1000)));
    const response = await z.request({
      url: apiUrl(`/v1/automation/tasks/${encodeURIComponent(taskId)}`),
      params: { wait: left },
    });
    task = response.data;
  } while (!TERMINAL_STATUSES.includes(task.status) && task.status !== 'needs_input' && Date.now() < deadline);
  return task;
};

const perform = async (z, bundle) => {
  const wait = bundle.inputData.wait_for_result === true || bundle.inputData.wait_for_result === 'true';
  if (!wait) {
    return toItem(await createTask(z, bundle.inputData));
  }
  if (bundle.meta && bundle.meta.isLoadingSample) {
    const created = await createTask(z, bundle.inputData);
    return toItem(await waitForTask(z, created.task_id, SAMPLE_WAIT_SECONDS));
  }
  const task = await createTask(z, bundle.inputData, { callback_url: z.generateCallbackUrl() });
  return toItem(task);
};

// The callback's body is the terminal event; its data is the finished task.
const performResume = async (z, bundle) => {
  const event = bundle.cleanedRequest || {};
  if (event.data && event.data.task_id) return toItem(event.data);
  // Not an event body: read the task instead.
  const response = await z.request({
    url: apiUrl(`/v1/automation/tasks/${encodeURIComponent(bundle.outputData.task_id)}`),
  });
  return toItem(response.data);
};

const inputFields = [
  { key: 'title', label: 'Title', required: true, helpText: 'A short name for the task (at most 200 characters).' },
  { key: 'prompt', label: 'Prompt', required: true, type: 'text', helpText: 'What the agent should do.' },
  {
    key: 'model',
    label: 'Model',
    dynamic: 'model_list.id.name',
    helpText: 'Leave empty for the default model of your CodeTether.',
  },
  {
    key: 'agent_type',
    label: 'Agent Type',
    choices: { general: 'General', build: 'Build (may change the codebase)', plan: 'Plan (read-only, writes a plan)', explore: 'Explore (read-only)' },
    default: 'general',
  },
  { key: 'codebase_id', label: 'Codebase', dynamic: 'codebase_list.id.name', helpText: 'A registered codebase the agent works in.' },
  { key: 'priority', label: 'Priority', type: 'integer', helpText: 'Higher runs first when your running limit is reached. Default 0.' },
  { key: 'metadata', label: 'Metadata', dict: true, helpText: 'Key/value pairs returned with the task as given.' },
  {
    key: 'output_schema',
    label: 'Output Schema',
    type: 'text',
    altersDynamicFields: true,
    helpText:
      'Optional: a JSON Schema (root `"type": "object"`, at most 16 KiB) the answer must match, e.g. `{"type": "object", "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}}, "required": ["sentiment"]}`. With **Wait for the Result**, later steps can map each field (Result: Sentiment, ...).',
  },
  {
    key: 'tags',
    label: 'Tags',
    list: true,
    helpText: 'Optional labels (1 to 64 letters, digits or _ . : -; at most 20) to find the task by, e.g. in the triggers and Find Task.',
  },
  {
    key: 'wait_for_result',
    label: 'Wait for the Result',
    type: 'boolean',
    default: 'false',
    helpText: 'Pause this Zap until the task finishes, then continue with its result.',
  },
  {
    key: 'reference',
    label: 'Reference',
    helpText: 'Optional: your own unique reference. The same reference always returns the same task instead of a new one.',
  },
];

module.exports = {
  key: 'create_task',
  noun: 'Task',
  display: {
    label: 'Create Task',
    description: 'Creates a task for a CodeTether agent, optionally waiting for its result.',
  },
  operation: {
    inputFields,
    perform,
    performResume,
    sample: sampleWith({}),
    outputFields: [...TASK_OUTPUT_FIELDS, outputFieldsFromSchema],
  },
};
