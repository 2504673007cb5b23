'use strict';

// Every REST-hook trigger end to end: performSubscribe creates a real subscription, a real task
// event reaches a loopback target, perform turns the delivery into the task item, performList
// gives the same shape, and performUnsubscribe deletes the subscription (404 counts as done).

const { connect, appTester, App } = require('./support/connect');
const { api, createTask, startReceiver, waitForStatus } = require('./support/helpers');

const TRIGGERS = {
  task_created: { event: 'task.created', status: 'queued' },
  task_completed: { event: 'task.completed', status: 'completed' },
  task_failed: { event: 'task.failed', status: 'failed' },
  task_needs_input: { event: 'task.needs_input', status: 'needs_input' },
};

describe('REST-hook triggers', () => {
  let authData;
  let receiver;
  const subscriptions = {};

  beforeAll(async () => {
    ({ authData } = await connect());
    receiver = await startReceiver();
  });

  afterAll(async () => {
    await receiver.close();
  });

  test('performSubscribe creates one subscription per trigger, for its event only', async () => {
    for (const [key, { event }] of Object.entries(TRIGGERS)) {
      const sub = await appTester(App.triggers[key].operation.performSubscribe, {
        authData,
        targetUrl: receiver.url(`/${key}`),
      });
      expect(sub.id).toMatch(/^whk_/);
      expect(sub.secret).toMatch(/^whsec_/);
      subscriptions[key] = sub;
      const stored = await api('GET', `/v1/webhooks/${sub.id}`);
      expect(stored.status).toBe(200);
      expect(stored.body.events).toEqual([event]);
      expect(stored.body.url).toBe(receiver.url(`/${key}`));
      expect(stored.body.status).toBe('active');
    }
  });

  test('real events arrive and perform returns the task item; performList has the same shape', async () => {
    const done = await createTask({ title: 'Hook me', prompt: 'say hi' });
    const asking = await createTask({ title: 'Ask me', prompt: 'ASK: Which region?' });
    const failing = await createTask({ title: 'Fail me', prompt: 'FAIL: no such repo' });
    await waitForStatus(done.task_id, ['completed']);
    await waitForStatus(asking.task_id, ['needs_input']);
    await waitForStatus(failing.task_id, ['failed']);
    const expected = { task_created: done, task_completed: done, task_failed: failing, task_needs_input: asking };

    for (const [key, { event, status }] of Object.entries(TRIGGERS)) {
      const task = expected[key];
      const delivery = await receiver.waitFor((q) => q.url === `/${key}` && q.json.task_id === task.task_id);
      expect(delivery.headers['x-codetether-event']).toBe(event);
      expect(delivery.json.event).toBe(event);
      // Only the subscribed event reaches each target.
      expect(receiver.requests.filter((q) => q.url === `/${key}`).every((q) => q.json.event === event)).toBe(true);

      const [item] = await appTester(App.triggers[key].operation.perform, { authData, cleanedRequest: delivery.json });
      expect(item.id).toBe(task.task_id);
      expect(item.task_id).toBe(task.task_id);
      expect(item.status).toBe(status);
      expect(item.title).toBe(task.title);
      expect(item.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      if (key === 'task_needs_input') expect(item.required_action.prompt).toBe('Which region?');
      if (key === 'task_failed') expect(item.error.message).toContain('no such repo');

      const listed = await appTester(App.triggers[key].operation.performList, { authData });
      const same = listed.find((t) => t.id === task.task_id);
      expect(same).toBeDefined();
      expect(Object.keys(same).sort()).toEqual(Object.keys(item).sort());
      if (key !== 'task_created') {
        // A terminal or waiting task has not changed since its event: the very same item.
        expect(same).toEqual(item);
      }
      if (key !== 'task_created') expect(listed.every((t) => t.status === status)).toBe(true);
    }
  });

  test('the tag filter: events and listed tasks without every wanted tag are dropped', async () => {
    const tag = `zap-trigger-${Date.now()}`;
    const mine = await createTask({ title: 'Tagged', prompt: 'say hi', tags: [tag, 'extra'] });
    const other = await createTask({ title: 'Untagged', prompt: 'say hi', tags: ['other'] });
    const doneMine = await waitForStatus(mine.task_id, ['completed']);
    const doneOther = await waitForStatus(other.task_id, ['completed']);
    const op = App.triggers.task_completed.operation;
    expect(op.inputFields.map((f) => f.key)).toContain('tag');

    const event = (task) => ({ event: 'task.completed', task_id: task.task_id, data: task });
    const kept = await appTester(op.perform, { authData, inputData: { tag: [tag] }, cleanedRequest: event(doneMine) });
    expect(kept.map((t) => t.id)).toEqual([mine.task_id]);
    const dropped = await appTester(op.perform, { authData, inputData: { tag: [tag] }, cleanedRequest: event(doneOther) });
    expect(dropped).toEqual([]);
    const unfiltered = await appTester(op.perform, { authData, inputData: {}, cleanedRequest: event(doneOther) });
    expect(unfiltered.map((t) => t.id)).toEqual([other.task_id]);

    const listed = await appTester(op.performList, { authData, inputData: { tag: [tag, 'extra'] } });
    expect(listed.map((t) => t.id)).toEqual([mine.task_id]);
  });

  test('the sample of every trigger has the keys of a live item', async () => {
    const live = (await appTester(App.triggers.task_completed.operation.performList, { authData }))[0];
    for (const key of Object.keys(TRIGGERS)) {
      const sample = App.triggers[key].operation.sample;
      expect(Object.keys(sample).sort()).toEqual(Object.keys(live).sort());
    }
  });

  test('performUnsubscribe deletes the subscription; a second time (404) still succeeds', async () => {
    for (const key of Object.keys(TRIGGERS)) {
      const subscribeData = subscriptions[key];
      const out = await appTester(App.triggers[key].operation.performUnsubscribe, { authData, subscribeData });
      expect(out).toEqual({ id: subscribeData.id, unsubscribed: true });
      expect((await api('GET', `/v1/webhooks/${subscribeData.id}`)).status).toBe(404);
      const again = await appTester(App.triggers[key].operation.performUnsubscribe, { authData, subscribeData });
      expect(again.unsubscribed).toBe(true);
    }
  });

  test('hidden dropdown triggers list models, codebases and recent tasks', async () => {
    const models = await appTester(App.triggers.model_list.operation.perform, { authData });
    expect(models.map((m) => m.id)).toContain('demo');
    const codebases = await appTester(App.triggers.codebase_list.operation.perform, { authData });
    expect(Array.isArray(codebases)).toBe(true);
    const tasks = await appTester(App.triggers.task_list.operation.perform, { authData });
    expect(tasks.length).toBeGreaterThan(0);
    expect(tasks[0].id).toMatch(/^task_/);
    expect(tasks[0].name).toContain(tasks[0].title);
  });
});
