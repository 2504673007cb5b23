'use strict';

// The CodeTether app for Zapier (zapier-platform-core 19): OAuth2 with PKCE, four REST-hook
// triggers, actions over the task API, a search, and a search-or-create keyed by a reference.

const { version } = require('./package.json');
const { version: platformVersion } = require('zapier-platform-core');

const authentication = require('./authentication');
const { includeBearerToken, handleErrors } = require('./lib/middleware');
const { TRIGGERS } = require('./triggers/task-events');
const { LISTS } = require('./triggers/lists');
const createTask = require('./creates/create-task');
const { ACTIONS } = require('./creates/task-actions');
const findTask = require('./searches/find-task');

const byKey = (items) => Object.fromEntries(items.map((item) => [item.key, item]));

module.exports = {
  version,
  platformVersion,
  authentication,
  beforeRequest: [includeBearerToken],
  afterResponse: [handleErrors],
  triggers: byKey([...TRIGGERS, ...LISTS]),
  creates: byKey([createTask, ...ACTIONS]),
  searches: byKey([findTask]),
  searchOrCreates: {
    find_task: {
      key: 'find_task',
      display: {
        label: 'Find or Create Task',
        description: 'Finds a task by its reference, or creates it when there is none.',
      },
      search: 'find_task',
      create: 'create_task',
    },
  },
};
