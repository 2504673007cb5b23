'use strict';

// Find Task: by id, or the newest task with a status and/or codebase (or with a reference, for
// the search-or-create pair over Create Task).

const { apiUrl } = require('../lib/config');
const { toItem, sampleWith, TASK_OUTPUT_FIELDS } = require('../lib/task');
const { FieldError, parseTags } = require('../lib/fields');

// How far back a search by reference looks (the newest tasks, newest first).
const REFERENCE_SCAN = 100;

const perform = async (z, bundle) => {
  const { task_id: taskId, status, codebase_id: codebaseId, reference } = bundle.inputData;
  if (taskId) {
    const response = await z.request({
      url: apiUrl(`/v1/automation/tasks/${encodeURIComponent(taskId)}`),
      skipThrowForStatus: true,
    });
    if (response.status === 404) return [];
    response.skipThrowForStatus = false;
    response.throwForStatus();
    return [toItem(response.data)];
  }
  const params = { limit: reference ? REFERENCE_SCAN : 1 };
  if (status) params.status = status;
  if (codebaseId) params.codebase_id = codebaseId;
  let tags;
  try {
    tags = parseTags(bundle.inputData.tag);
  } catch (err) {
    if (err instanceof FieldError) throw new z.errors.Error(err.message, 'invalid_input', 400);
    throw err;
  }
  // The list filter takes `tag` once per tag (tasks having every one).
  const query = tags.length ? `?${tags.map((t) => `tag=${encodeURIComponent(t)}`).join('&')}` : '';
  const response = await z.request({ url: apiUrl(`/v1/automation/tasks${query}`), params });
  let tasks = response.data.data;
  if (reference) tasks = tasks.filter((t) => t.metadata && t.metadata.zapier_reference === reference);
  return tasks.slice(0, 1).map(toItem);
};

module.exports = {
  key: 'find_task',
  noun: 'Task',
  display: {
    label: 'Find Task',
    description: 'Finds a task by its ID, or the newest task with a status, codebase or tags.',
  },
  operation: {
    inputFields: [
      { key: 'task_id', label: 'Task', dynamic: 'task_list.id.name', helpText: 'Find this task. Leave empty to search by the fields below.' },
      {
        key: 'status',
        label: 'Status',
        choices: {
          queued: 'Queued',
          running: 'Running',
          needs_input: 'Needs Input',
          completed: 'Completed',
          failed: 'Failed',
          cancelled: 'Cancelled',
        },
      },
      { key: 'codebase_id', label: 'Codebase', dynamic: 'codebase_list.id.name' },
      { key: 'tag', label: 'Tags', list: true, helpText: 'The newest task that has every one of these tags.' },
      { key: 'reference', label: 'Reference', helpText: 'The Reference given to Create Task.' },
    ],
    perform,
    sample: sampleWith({}),
    outputFields: TASK_OUTPUT_FIELDS,
  },
};
