'use strict';

// Request and response middleware: the Bearer header on every API call, and CodeTether's
// problem+json answers turned into errors a Zap owner can act on.

const isTokenEndpoint = (url) => /\/oauth\/(token|revoke|introspect)$/.test(String(url).split('?')[0]);

const includeBearerToken = (request, z, bundle) => {
  const token = bundle.authData && bundle.authData.access_token;
  if (token && !isTokenEndpoint(request.url)) {
    request.headers = request.headers || {};
    request.headers.Authorization = `Bearer ${token}`;
  }
  // Let handleErrors turn a 429 into a ThrottledError carrying the server's detail and Retry-After.
  request.throwForThrottlingEarly = false;
  return request;
};

// What to tell the Zap owner beside the server's own detail, by problem code.
const HINTS = {
  insufficient_scope: 'Reconnect your CodeTether account and allow every permission it asks for.',
  model_unavailable: 'Choose another model in the Model field, or ask your CodeTether admin to configure it.',
  unknown_model: 'Choose a model from the Model dropdown.',
  codebase_not_found: 'Choose a codebase from the Codebase dropdown.',
  task_not_found: 'Check the Task ID: map it from an earlier CodeTether step.',
  task_not_waiting: 'The task is not waiting for an answer any more.',
  stale_required_action: 'The task asked a newer question; answer that one.',
  task_not_cancellable: 'The task already finished.',
  validation_error: 'Check the fields of this step.',
  idempotency_key_reused: 'The same reference was used for a different task; use a new reference.',
};

const parseJson = (response) => {
  if (response.data !== undefined && typeof response.data === 'object') return response.data;
  try {
    return JSON.parse(response.content);
  } catch (_err) {
    return null;
  }
};

const problemMessage = (problem) => {
  const detail = problem.detail || problem.title || 'CodeTether refused the request';
  const fields = Array.isArray(problem.errors)
    ? problem.errors.filter((e) => e && e.field).map((e) => `${e.field}: ${e.message}`)
    : [];
  const hint = HINTS[problem.code];
  return [detail, fields.length ? `(${fields.join('; ')})` : '', hint || ''].filter(Boolean).join(' ');
};

const handleErrors = (response, z) => {
  if (response.skipThrowForStatus || response.status < 400) return response;
  const body = parseJson(response) || {};
  if (response.status === 429) {
    const seconds = parseInt(response.getHeader('retry-after'), 10);
    throw new z.errors.ThrottledError(
      `${body.detail || 'CodeTether rate limit reached'}. Zapier retries this step automatically.`,
      Number.isFinite(seconds) ? seconds : 60,
    );
  }
  if (body.code) {
    throw new z.errors.Error(problemMessage(body), body.code, response.status);
  }
  if (body.error) {
    // RFC 6749 errors of the OAuth endpoints.
    throw new z.errors.Error(body.error_description || body.error, body.error, response.status);
  }
  return response; // the platform's own status check reports anything else
};

module.exports = { includeBearerToken, handleErrors, problemMessage, HINTS };
