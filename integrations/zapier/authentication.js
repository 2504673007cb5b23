'use strict';

// OAuth2 (authorization code + PKCE) against CodeTether's own authorization server. Zapier is a
// confidential client: register it with `codetether oauth-clients create --name Zapier
// --redirect-uri <Zapier's redirect URI>` and put the client id and secret in CLIENT_ID and
// CLIENT_SECRET (`zapier env:set`).

const { apiUrl, SCOPES } = require('./lib/config');

const tokenRequest = async (z, bundle, form) => {
  const response = await z.request({
    url: apiUrl('/oauth/token'),
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: { ...form, client_id: process.env.CLIENT_ID, client_secret: process.env.CLIENT_SECRET },
    skipThrowForStatus: true,
  });
  const body = response.data || {};
  if (response.status === 200 && body.access_token) {
    return body;
  }
  if (body.error === 'invalid_grant' && form.grant_type === 'refresh_token') {
    // The refresh token is no longer valid (revoked, expired or reused): only reconnecting helps.
    throw new z.errors.ExpiredAuthError(
      'Your CodeTether connection has expired or was revoked. Reconnect your CodeTether account.',
    );
  }
  throw new z.errors.Error(
    body.error_description || body.error || `CodeTether answered ${response.status} to the token request`,
    body.error || 'token_request_failed',
    response.status,
  );
};

const authorizeUrl = (z, bundle) => {
  const url = new URL(apiUrl('/oauth/authorize'));
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', process.env.CLIENT_ID);
  url.searchParams.set('redirect_uri', bundle.inputData.redirect_uri);
  url.searchParams.set('state', bundle.inputData.state);
  url.searchParams.set('scope', SCOPES.join(' '));
  return url.toString();
};

const getAccessToken = async (z, bundle) => {
  const form = {
    grant_type: 'authorization_code',
    code: bundle.inputData.code,
    redirect_uri: bundle.inputData.redirect_uri,
  };
  // With enablePkce Zapier generated the verifier and sent its S256 challenge to /oauth/authorize.
  if (bundle.inputData.code_verifier) form.code_verifier = bundle.inputData.code_verifier;
  const body = await tokenRequest(z, bundle, form);
  return { access_token: body.access_token, refresh_token: body.refresh_token };
};

const refreshAccessToken = async (z, bundle) => {
  const body = await tokenRequest(z, bundle, {
    grant_type: 'refresh_token',
    refresh_token: bundle.authData.refresh_token,
  });
  // Refresh tokens rotate: keep the new one (parallel refreshes each get a valid pair).
  return { access_token: body.access_token, refresh_token: body.refresh_token || bundle.authData.refresh_token };
};

const test = async (z) => {
  const response = await z.request({ url: apiUrl('/v1/automation/me') });
  return response.data;
};

module.exports = {
  type: 'oauth2',
  test,
  // The test's answer (GET /v1/automation/me) is bundle.inputData here.
  connectionLabel: (z, bundle) => bundle.inputData.email,
  oauth2Config: {
    authorizeUrl,
    getAccessToken,
    refreshAccessToken,
    scope: SCOPES.join(' '),
    autoRefresh: true,
    enablePkce: true,
  },
  fields: [],
};
