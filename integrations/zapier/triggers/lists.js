'use strict';

// Hidden polling triggers that feed the dropdowns of the actions and the search.

const { apiUrl } = require('../lib/config');
const { toItem, SAMPLE_TASK } = require('../lib/task');

const models = {
  key: 'model_list',
  noun: 'Model',
  display: { label: 'List Models', description: 'Lists the models this CodeTether offers.', hidden: true },
  operation: {
    perform: async (z) => {
      const response = await z.request({ url: apiUrl('/v1/automation/models') });
      // Available models first; an unavailable one would be refused when the task is created.
      return response.data.data
        .filter((m) => m.available)
        .map((m) => ({ id: m.name, name: m.default ? `${m.name} (default)` : m.name, provider: m.provider }));
    },
    sample: { id: 'claude-sonnet-4', name: 'claude-sonnet-4', provider: 'anthropic' },
  },
};

const codebases = {
  key: 'codebase_list',
  noun: 'Codebase',
  display: { label: 'List Codebases', description: 'Lists your registered codebases.', hidden: true },
  operation: {
    perform: async (z) => {
      const response = await z.request({ url: apiUrl('/v1/automation/codebases') });
      return response.data.data.map((c) => ({ id: c.codebase_id, name: c.name, repository_url: c.repository_url }));
    },
    sample: { id: 'cb_01jx9m5n6p7q8r9s0t1u2v3w4x', name: 'website', repository_url: 'https://github.com/acme/website' },
  },
};

const recentTasks = {
  key: 'task_list',
  noun: 'Task',
  display: { label: 'List Recent Tasks', description: 'Lists your most recent tasks.', hidden: true },
  operation: {
    perform: async (z) => {
      const params = { limit: 50 };
      const response = await z.request({ url: apiUrl('/v1/automation/tasks'), params });
      return response.data.data.map((t) => ({ ...toItem(t), name: `${t.title} (${t.status})` }));
    },
    sample: { ...SAMPLE_TASK, name: `${SAMPLE_TASK.title} (completed)` },
  },
};

module.exports = { LISTS: [models, codebases, recentTasks] };
