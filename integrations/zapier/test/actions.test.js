'use strict';

// Every action and the search against the live service, the "wait for the result" pause and
// resume through a real callback POST, and the search-or-create pair keyed by a reference.

const createLambdaHandler = require('zapier-platform-core/src/tools/create-lambda-handler');

const { connect, appTester, App } = require('./support/connect');
const { api, createTask, startReceiver, waitForStatus } = require('./support/helpers');

describe('actions and search', () => {
  let authData;

  beforeAll(async () => {
    ({ authData } = await connect());
  });

  test('create_task creates a task with every field and returns it as an item', async () => {
    const item = await appTester(App.creates.create_task.operation.perform, {
      authData,
      inputData: {
        title: 'From a Zap',
        prompt: 'Summarize this feedback',
        model: 'demo',
        agent_type: 'explore',
        priority: '5',
        metadata: { zap: 'feedback' },
        wait_for_result: false,
      },
    });
    expect(item.id).toMatch(/^task_/);
    expect(item.id).toBe(item.task_id);
    expect(item).toMatchObject({ title: 'From a Zap', description: 'Summarize this feedback', model: 'demo', agent_type: 'explore', priority: 5, metadata: { zap: 'feedback' }, status: 'queued', callback_url: null });
    const done = await waitForStatus(item.id, ['completed']);
    expect(done.result).toBeTruthy();
  });

  test('wait_for_result pauses with a callback URL; the callback POST carries the final task; performResume returns it', async () => {
    const receiver = await startReceiver();
    try {
      const callbackUrl = receiver.url('/hooks/standard/catch/callback-123');
      // What Zapier's runtime does: the event carries the step's callback URL.
      const handler = createLambdaHandler(App);
      const out = await handler({
        command: 'execute',
        method: 'creates.create_task.operation.perform',
        bundle: { authData, inputData: { title: 'Wait for me', prompt: 'ASK: Which color?', wait_for_result: true } },
        callback_url: callbackUrl,
      });
      const paused = out.results;
      expect(paused.callback_url).toBe(callbackUrl);
      expect(paused.status).toBe('queued');

      // A question does not wake the paused step; answering lets the task finish.
      const waiting = await waitForStatus(paused.id, ['needs_input']);
      await appTester(App.creates.answer_question.operation.perform, { authData, inputData: { task_id: paused.id, message: 'blue' } });
      const final = await waitForStatus(paused.id, ['completed']);
      expect(waiting.required_action.prompt).toBe('Which color?');

      const callback = await receiver.waitFor((q) => q.url === '/hooks/standard/catch/callback-123');
      expect(callback.method).toBe('POST');
      expect(callback.json.event).toBe('task.completed');
      expect(callback.json.data.task_id).toBe(paused.id);
      const resumed = await appTester(App.creates.create_task.operation.performResume, {
        authData,
        inputData: { title: 'Wait for me', prompt: 'ASK: Which color?', wait_for_result: true },
        outputData: paused,
        cleanedRequest: callback.json,
      });
      expect(resumed.id).toBe(paused.id);
      expect(resumed.status).toBe('completed');
      expect(resumed.result).toBe(final.result);
      expect(receiver.requests.filter((q) => q.url.startsWith('/hooks/')).length).toBe(1);
    } finally {
      await receiver.close();
    }
  });

  test('while loading a sample, wait_for_result long-polls to the finished task instead', async () => {
    const item = await appTester(App.creates.create_task.operation.perform, {
      authData,
      inputData: { title: 'Sample', prompt: 'say hi', wait_for_result: true },
      meta: { isLoadingSample: true },
    });
    expect(item.status).toBe('completed');
    expect(item.callback_url).toBeNull();
    expect(item.result).toBeTruthy();
  });

  test('output_schema: three typed fields come back as result_json and as mappable output fields', async () => {
    const schema = {
      type: 'object',
      properties: {
        sentiment: { type: 'string', enum: ['positive', 'neutral', 'negative'] },
        priority: { type: 'integer', minimum: 1, maximum: 5, title: 'Urgency' },
        needs_reply: { type: 'boolean', description: 'Whether someone should answer.' },
      },
      required: ['sentiment', 'priority', 'needs_reply'],
      additionalProperties: false,
    };
    const inputData = {
      title: 'Triage',
      prompt: 'Classify: the app is slow but lovely',
      output_schema: JSON.stringify(schema),
      tags: ['zapier-structured', 'feedback'],
      wait_for_result: true,
    };
    // The fields later steps can map, computed from this step's input.
    const fields = await appTester(App.creates.create_task.operation.outputFields.at(-1), { authData, inputData });
    expect(fields).toEqual([
      { key: 'result_json__sentiment', label: 'Result: Sentiment', type: 'string', helpText: 'One of: positive, neutral, negative' },
      { key: 'result_json__priority', label: 'Result: Urgency', type: 'integer' },
      { key: 'result_json__needs_reply', label: 'Result: Needs reply', type: 'boolean', helpText: 'Whether someone should answer.' },
    ]);

    const item = await appTester(App.creates.create_task.operation.perform, { authData, inputData, meta: { isLoadingSample: true } });
    expect(item.status).toBe('completed');
    expect(item.tags).toEqual(['zapier-structured', 'feedback']);
    expect(item.output_schema).toEqual(schema);
    expect(item.result_json).toEqual({ sentiment: 'positive', priority: 1, needs_reply: true });
    // Every declared field is on the item under its flattened key, with its declared type.
    const typeOf = { string: 'string', integer: 'number', boolean: 'boolean' };
    for (const field of fields) {
      const value = item.result_json[field.key.replace('result_json__', '')];
      expect(typeof value).toBe(typeOf[field.type]);
    }
    expect(schema.properties.sentiment.enum).toContain(item.result_json.sentiment);

    // The paused path: the callback's body carries result_json and performResume returns it.
    const resumed = await appTester(App.creates.create_task.operation.performResume, {
      authData,
      inputData,
      outputData: item,
      cleanedRequest: { event: 'task.completed', data: item },
    });
    expect(resumed.result_json).toEqual(item.result_json);
  });

  test('output_schema and tags mistakes are reported before anything is created', async () => {
    const base = { title: 'Bad', prompt: 'hi' };
    await expect(
      appTester(App.creates.create_task.operation.perform, { authData, inputData: { ...base, output_schema: '{"type": ' } }),
    ).rejects.toThrow(/Output Schema must be valid JSON/);
    await expect(
      appTester(App.creates.create_task.operation.perform, { authData, inputData: { ...base, output_schema: '{"type": "array"}' } }),
    ).rejects.toThrow(/its root needs/);
    await expect(
      appTester(App.creates.create_task.operation.perform, { authData, inputData: { ...base, tags: ['not ok'] } }),
    ).rejects.toThrow(/not ok\W+ is invalid/);
    // A schema still being typed gives no output fields rather than an error.
    const fields = await appTester(App.creates.create_task.operation.outputFields.at(-1), { authData, inputData: { output_schema: '{"ty' } });
    expect(fields).toEqual([]);
  });

  test('find_task by tags finds the newest task having every tag', async () => {
    const tag = `zap-find-${Date.now()}`;
    const older = await createTask({ title: 'Tagged older', prompt: 'hi', tags: [tag, 'a'] });
    const newer = await createTask({ title: 'Tagged newer', prompt: 'hi', tags: [tag] });
    const [found] = await appTester(App.searches.find_task.operation.perform, { authData, inputData: { tag: [tag] } });
    expect(found.id).toBe(newer.task_id);
    const [both] = await appTester(App.searches.find_task.operation.perform, { authData, inputData: { tag: [tag, 'a'] } });
    expect(both.id).toBe(older.task_id);
    expect(both.tags).toEqual([tag, 'a']);
  });

  test('send_message starts a conversation, then continues it as a follow-up', async () => {
    const first = await appTester(App.creates.send_message.operation.perform, { authData, inputData: { message: 'Hello there' } });
    expect(first.id).toMatch(/^task_/);
    expect(first.delivered_as).toBe('new_task');
    expect(first.conversation_id).toBe(first.id);
    const done = await waitForStatus(first.id, ['completed']);
    const next = await appTester(App.creates.send_message.operation.perform, {
      authData,
      inputData: { message: 'Now shorter', conversation_id: first.id },
    });
    expect(next.id).toBe(first.id);
    expect(next.delivered_as).toBe('follow_up');
    expect(next.run_id).not.toBe(done.run_id);
  });

  test('answer_question answers the pending question; on a task that is not waiting it says so', async () => {
    const task = await createTask({ title: 'Q', prompt: 'ASK: Deadline?' });
    await waitForStatus(task.task_id, ['needs_input']);
    const answered = await appTester(App.creates.answer_question.operation.perform, {
      authData,
      inputData: { task_id: task.task_id, message: 'Friday' },
    });
    expect(answered.id).toBe(task.task_id);
    expect(answered.required_action).toBeNull();
    const done = await waitForStatus(task.task_id, ['completed']);
    expect(done.result).toContain('Friday');
    await expect(
      appTester(App.creates.answer_question.operation.perform, { authData, inputData: { task_id: task.task_id, message: 'again' } }),
    ).rejects.toThrow(/not waiting for an answer/);
  });

  test('cancel_task cancels a running task; a finished one gives an actionable error', async () => {
    const task = await createTask({ title: 'Long', prompt: 'SLEEP: 30' });
    await waitForStatus(task.task_id, ['running']);
    const cancelled = await appTester(App.creates.cancel_task.operation.perform, { authData, inputData: { task_id: task.task_id } });
    expect(cancelled.id).toBe(task.task_id);
    expect(cancelled.status).toBe('cancelled');
    const done = await createTask({ title: 'Short', prompt: 'hi' });
    await waitForStatus(done.task_id, ['completed']);
    const err = await appTester(App.creates.cancel_task.operation.perform, { authData, inputData: { task_id: done.task_id } }).catch((e) => e);
    expect(err.name).toBe('AppError');
    const parsed = JSON.parse(err.message);
    expect(parsed).toMatchObject({ code: 'task_not_cancellable', status: 409 });
    expect(parsed.message).toMatch(/already completed/);
  });

  test('find_task by id, by status, and not found', async () => {
    const task = await createTask({ title: 'Findable', prompt: 'hi' });
    await waitForStatus(task.task_id, ['completed']);
    const [byId] = await appTester(App.searches.find_task.operation.perform, { authData, inputData: { task_id: task.task_id } });
    expect(byId.id).toBe(task.task_id);
    expect(byId.status).toBe('completed');
    const [newest] = await appTester(App.searches.find_task.operation.perform, { authData, inputData: { status: 'completed' } });
    expect(newest.status).toBe('completed');
    const none = await appTester(App.searches.find_task.operation.perform, { authData, inputData: { task_id: 'task_01jx0000000000000000000000' } });
    expect(none).toEqual([]);
  });

  test('search-or-create: the same reference finds or returns the same task, never a second one', async () => {
    const reference = `order-${Date.now()}`;
    const missing = await appTester(App.searches.find_task.operation.perform, { authData, inputData: { reference } });
    expect(missing).toEqual([]);
    const input = { title: 'Order follow-up', prompt: 'Draft a reply', reference };
    const created = await appTester(App.creates.create_task.operation.perform, { authData, inputData: input });
    expect(created.metadata.zapier_reference).toBe(reference);
    const again = await appTester(App.creates.create_task.operation.perform, { authData, inputData: input });
    expect(again.id).toBe(created.id);
    const [found] = await appTester(App.searches.find_task.operation.perform, { authData, inputData: { reference } });
    expect(found.id).toBe(created.id);
    expect(App.searchOrCreates.find_task).toMatchObject({ search: 'find_task', create: 'create_task' });
  });
});
