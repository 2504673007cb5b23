'use strict';

// How CodeTether's errors reach a Zap owner: problem+json → z.errors.Error(detail + hint, code,
// status), 429 → ThrottledError with the server's Retry-After (integer seconds).

const { connect, appTester, App } = require('./support/connect');
const { stack } = require('./support/helpers');
const { handleErrors, problemMessage } = require('../lib/middleware');

const appErrorOf = (err) => {
  expect(err.name).toBe('AppError');
  return JSON.parse(err.message);
};

describe('error mapping', () => {
  let authData;

  beforeAll(async () => {
    ({ authData } = await connect());
  });

  test('a problem+json answer becomes an error with the detail, the code, the status and a hint', async () => {
    const err = await appTester(App.creates.create_task.operation.perform, {
      authData,
      inputData: { title: 'Bad model', prompt: 'hi', model: 'no-such-model' },
    }).catch((e) => e);
    const parsed = appErrorOf(err);
    expect(parsed.code).toBe('unknown_model');
    expect(parsed.status).toBe(422);
    expect(parsed.message).toContain("unknown model 'no-such-model'");
    expect(parsed.message).toContain('Choose a model from the Model dropdown.');
  });

  test('a validation problem names the fields', async () => {
    const err = await appTester(App.creates.create_task.operation.perform, {
      authData,
      inputData: { title: 'x'.repeat(201), prompt: 'hi' },
    }).catch((e) => e);
    const parsed = appErrorOf(err);
    expect(parsed.status).toBe(422);
    expect(parsed.message).toMatch(/title/);
  });

  test('429 becomes a ThrottledError with the Retry-After of the server', async () => {
    // A free-tier user has 60 requests a minute; its API key works as a bearer token too.
    const throttledAuth = { access_token: stack().freeKey };
    let err;
    for (let i = 0; i < 80 && !err; i += 1) {
      err = await appTester(App.authentication.test, { authData: throttledAuth }).then(() => undefined, (e) => e);
    }
    expect(err).toBeDefined();
    expect(err.name).toBe('ThrottledError');
    const parsed = JSON.parse(err.message);
    expect(Number.isInteger(parsed.delay)).toBe(true);
    expect(parsed.delay).toBeGreaterThanOrEqual(1);
    expect(parsed.delay).toBeLessThanOrEqual(60);
    expect(parsed.message).toMatch(/rate limit/);
  });

  test('problemMessage and handleErrors on canned answers', () => {
    expect(problemMessage({ detail: 'the task is already completed', code: 'task_not_cancellable' })).toBe(
      'the task is already completed The task already finished.',
    );
    expect(
      problemMessage({ detail: 'invalid body', code: 'validation_error', errors: [{ field: 'title', message: 'too long' }] }),
    ).toBe('invalid body (title: too long) Check the fields of this step.');
    const z = { errors: require('zapier-platform-core').errors };
    const ok = { status: 200, data: {} };
    expect(handleErrors(ok, z)).toBe(ok);
    const oauth = { status: 400, data: { error: 'invalid_grant', error_description: 'expired' }, getHeader: () => null };
    expect(() => handleErrors(oauth, z)).toThrow(/expired/);
  });
});
