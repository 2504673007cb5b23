'use strict';

// Send Message, Answer Question and Cancel Task.

const { apiUrl } = require('../lib/config');
const { toItem, sampleWith, TASK_OUTPUT_FIELDS } = require('../lib/task');

const TASK_ID_FIELD = {
  key: 'task_id',
  label: 'Task',
  required: true,
  dynamic: 'task_list.id.name',
  helpText: 'Map the Task ID from an earlier CodeTether step, or pick a recent task.',
};

const taskPath = (id, suffix = '') => apiUrl(`/v1/automation/tasks/${encodeURIComponent(id)}${suffix}`);

const sendMessage = {
  key: 'send_message',
  noun: 'Message',
  display: {
    label: 'Send Message',
    description: 'Sends a message to a task (a reply, or a follow-up once it finished), or starts a new conversation.',
  },
  operation: {
    inputFields: [
      { key: 'message', label: 'Message', required: true, type: 'text' },
      {
        key: 'conversation_id',
        label: 'Conversation',
        dynamic: 'task_list.id.name',
        helpText: 'The task to continue. Leave empty to start a new conversation.',
      },
      { key: 'codebase_id', label: 'Codebase', dynamic: 'codebase_list.id.name', helpText: 'For a new conversation only.' },
    ],
    perform: async (z, bundle) => {
      const body = { message: bundle.inputData.message };
      if (bundle.inputData.conversation_id) body.conversation_id = bundle.inputData.conversation_id;
      if (bundle.inputData.codebase_id) body.codebase_id = bundle.inputData.codebase_id;
      const response = await z.request({ url: apiUrl('/v1/automation/messages'), method: 'POST', body });
      return toItem(response.data);
    },
    sample: sampleWith({ status: 'queued', conversation_id: 'task_01jx9m3k7q2w5e8r1t4y6u0i3o', delivered_as: 'new_task' }),
    outputFields: [
      ...TASK_OUTPUT_FIELDS,
      { key: 'conversation_id', label: 'Conversation ID' },
      { key: 'delivered_as', label: 'Delivered As' },
    ],
  },
};

const answerQuestion = {
  key: 'answer_question',
  noun: 'Answer',
  display: {
    label: 'Answer Question',
    description: 'Answers the question a task is waiting on, so it continues.',
  },
  operation: {
    inputFields: [TASK_ID_FIELD, { key: 'message', label: 'Answer', required: true, type: 'text' }],
    perform: async (z, bundle) => {
      const id = bundle.inputData.task_id;
      const current = (await z.request({ url: taskPath(id) })).data;
      if (current.status !== 'needs_input' || !current.required_action) {
        throw new z.errors.Error(
          `The task is ${current.status}, not waiting for an answer. Answer only tasks that need input.`,
          'task_not_waiting',
          409,
        );
      }
      const response = await z.request({
        url: taskPath(id, '/input'),
        method: 'POST',
        body: { message: bundle.inputData.message, required_action_id: current.required_action.id },
      });
      return toItem(response.data);
    },
    sample: sampleWith({ status: 'queued', completed_at: null, runtime_seconds: null, result: null, result_summary: null }),
    outputFields: TASK_OUTPUT_FIELDS,
  },
};

const cancelTask = {
  key: 'cancel_task',
  noun: 'Task',
  display: {
    label: 'Cancel Task',
    description: 'Cancels a queued, running or waiting task.',
  },
  operation: {
    inputFields: [TASK_ID_FIELD],
    perform: async (z, bundle) => {
      const response = await z.request({ url: taskPath(bundle.inputData.task_id), method: 'DELETE' });
      return toItem(response.data);
    },
    sample: sampleWith({ status: 'cancelled', result: null, result_summary: null }),
    outputFields: TASK_OUTPUT_FIELDS,
  },
};

module.exports = { ACTIONS: [sendMessage, answerQuestion, cancelTask], TASK_ID_FIELD };
