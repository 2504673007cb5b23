'use strict';

// The four instant triggers, one factory: REST hooks on POST/DELETE /v1/webhooks, with
// performList reading GET /v1/automation/tasks so samples and live events have the same shape.

const { apiUrl } = require('../lib/config');
const { toItem, sampleWith, TASK_OUTPUT_FIELDS } = require('../lib/task');
const { FieldError, parseTags, hasAllTags } = require('../lib/fields');

// The optional tag filter every trigger offers: only tasks having every tag trigger the Zap.
const TAG_INPUT = {
  key: 'tag',
  label: 'Only Tasks Tagged',
  list: true,
  helpText: 'Optional: trigger only for tasks that have every one of these tags.',
};

const wantedTags = (z, bundle) => {
  try {
    return parseTags(bundle.inputData && bundle.inputData.tag);
  } catch (err) {
    if (err instanceof FieldError) throw new z.errors.Error(err.message, 'invalid_input', 400);
    throw err;
  }
};

const performSubscribe = (event) => async (z, bundle) => {
  const response = await z.request({
    url: apiUrl('/v1/webhooks'),
    method: 'POST',
    body: {
      url: bundle.targetUrl,
      events: [event],
      description: `Zapier: ${event}`,
    },
  });
  // {id, secret, ...}; the id is what performUnsubscribe deletes.
  return response.data;
};

const performUnsubscribe = async (z, bundle) => {
  const response = await z.request({
    url: apiUrl(`/v1/webhooks/${encodeURIComponent(bundle.subscribeData.id)}`),
    method: 'DELETE',
    skipThrowForStatus: true,
  });
  // 404: already gone (deleted by hand, or disabled and removed): unsubscribed all the same.
  if (response.status !== 204 && response.status !== 404) {
    response.skipThrowForStatus = false;
    response.throwForStatus();
  }
  return { id: bundle.subscribeData.id, unsubscribed: true };
};

// A delivery's body is the event; its `data` is the task object at that moment.
const perform = async (z, bundle) => {
  const event = bundle.cleanedRequest || {};
  const task = event.data && event.data.task_id ? event.data : null;
  // Events of tasks without the wanted tags are acknowledged and dropped.
  return task && hasAllTags(task, wantedTags(z, bundle)) ? [toItem(task)] : [];
};

const performList = (status) => async (z, bundle) => {
  const params = { limit: 10 };
  if (status) params.status = status;
  const tags = wantedTags(z, bundle);
  // The list filter takes `tag` once per tag (tasks having every one).
  const query = tags.length ? `?${tags.map((t) => `tag=${encodeURIComponent(t)}`).join('&')}` : '';
  const response = await z.request({ url: apiUrl(`/v1/automation/tasks${query}`), params });
  return response.data.data.map(toItem);
};

const makeTrigger = ({ key, noun, label, description, event, status, sample }) => ({
  key,
  noun,
  display: { label, description },
  operation: {
    type: 'hook',
    inputFields: [TAG_INPUT],
    performSubscribe: performSubscribe(event),
    performUnsubscribe,
    perform,
    performList: performList(status),
    sample,
    outputFields: TASK_OUTPUT_FIELDS,
  },
});

const TRIGGERS = [
  makeTrigger({
    key: 'task_created',
    noun: 'Task',
    label: 'New Task',
    description: 'Triggers when a new task is created in CodeTether.',
    event: 'task.created',
    status: null,
    sample: sampleWith({ status: 'queued', started_at: null, completed_at: null, runtime_seconds: null, result: null, result_summary: null }),
  }),
  makeTrigger({
    key: 'task_completed',
    noun: 'Task',
    label: 'Task Completed',
    description: 'Triggers when a task finishes successfully, with its result.',
    event: 'task.completed',
    status: 'completed',
    sample: sampleWith({}),
  }),
  makeTrigger({
    key: 'task_failed',
    noun: 'Task',
    label: 'Task Failed',
    description: 'Triggers when a task fails, with the error code and message.',
    event: 'task.failed',
    status: 'failed',
    sample: sampleWith({
      status: 'failed',
      result: null,
      result_summary: null,
      error: { code: 'provider_rejected', message: 'The model provider refused the request.' },
    }),
  }),
  makeTrigger({
    key: 'task_needs_input',
    noun: 'Task',
    label: 'Task Needs Input',
    description: 'Triggers when a task asks a question and waits for your answer.',
    event: 'task.needs_input',
    status: 'needs_input',
    sample: sampleWith({
      status: 'needs_input',
      completed_at: null,
      runtime_seconds: null,
      result: null,
      result_summary: null,
      required_action: {
        id: 'act_01jx9m4a2b3c4d5e6f7g8h9j0k',
        kind: 'question',
        prompt: 'Which region should the report cover?',
        asked_at: '2026-02-10T12:01:00.000Z',
        reply_url: 'https://api.codetether.io/r/eyJ0IjoidGFza18wMWp4OW0zazdxMnc1ZThyMXQ0eTZ1MGkzbyJ9',
      },
    }),
  }),
];

module.exports = { TRIGGERS, perform, performList, performSubscribe, performUnsubscribe };
