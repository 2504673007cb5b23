'use strict';

const App = require('../index');
const { connect, appTester } = require('./support/connect');
const { stack, api } = require('./support/helpers');

describe('authentication (OAuth2 + PKCE against the live service)', () => {
  let authData;

  beforeAll(async () => {
    ({ authData } = await connect());
  });

  test('the authorize URL asks for the contract scopes with the client id', async () => {
    const url = new URL(
      await appTester(App.authentication.oauth2Config.authorizeUrl, { inputData: { redirect_uri: stack().redirectUri, state: 'abc' } }),
    );
    expect(url.origin + url.pathname).toBe(`${stack().baseUrl}/oauth/authorize`);
    expect(url.searchParams.get('client_id')).toBe(stack().clientId);
    expect(url.searchParams.get('scope')).toBe('tasks:read tasks:write messages:write codebases:read webhooks:manage');
    expect(url.searchParams.get('state')).toBe('abc');
    expect(App.authentication.oauth2Config.enablePkce).toBe(true);
    expect(App.authentication.oauth2Config.autoRefresh).toBe(true);
  });

  test('getAccessToken returned a rotating pair, and test + connectionLabel show the user', async () => {
    expect(authData.access_token).toMatch(/^cta_/);
    expect(authData.refresh_token).toMatch(/^ctr_/);
    const me = await appTester(App.authentication.test, { authData });
    expect(me.email).toBe(stack().email);
    expect(me.auth_method).toBe('oauth');
    expect(me.scopes).toEqual(expect.arrayContaining(['tasks:read', 'tasks:write', 'messages:write', 'webhooks:manage']));
    const label = await appTester(App.authentication.connectionLabel, { authData, inputData: me });
    expect(label).toBe(stack().email);
  });

  test('two refreshes in parallel (two Zap runs at once) both succeed, and both pairs work', async () => {
    const { authData: fresh } = await connect();
    const [a, b] = await Promise.all([
      appTester(App.authentication.oauth2Config.refreshAccessToken, { authData: fresh }),
      appTester(App.authentication.oauth2Config.refreshAccessToken, { authData: fresh }),
    ]);
    for (const pair of [a, b]) {
      expect(pair.access_token).toMatch(/^cta_/);
      expect(pair.refresh_token).toMatch(/^ctr_/);
      expect(pair.refresh_token).not.toBe(fresh.refresh_token);
      const me = await appTester(App.authentication.test, { authData: pair });
      expect(me.email).toBe(stack().email);
    }
    // Inside the grace window both runs get the same successor pair (one branch, not two).
    expect(a.access_token).toBe(b.access_token);
    expect(a.refresh_token).toBe(b.refresh_token);
    // Each rotated refresh token keeps working on its own.
    const again = await appTester(App.authentication.oauth2Config.refreshAccessToken, { authData: b });
    expect(again.access_token).toMatch(/^cta_/);
  });

  test('a revoked connection surfaces as an auth error: refresh-and-retry, then expired', async () => {
    const { authData: doomed } = await connect();
    const form = new URLSearchParams({
      token: doomed.refresh_token,
      client_id: stack().clientId,
      client_secret: stack().clientSecret,
    });
    const r = await fetch(`${stack().baseUrl}/oauth/revoke`, { method: 'POST', body: form });
    expect(r.status).toBe(200);
    await expect(appTester(App.authentication.test, { authData: doomed })).rejects.toMatchObject({ name: 'RefreshAuthError' });
    await expect(
      appTester(App.authentication.oauth2Config.refreshAccessToken, { authData: doomed }),
    ).rejects.toMatchObject({ name: 'ExpiredAuthError' });
    // The API key user is unaffected.
    expect((await api('GET', '/v1/automation/me')).status).toBe(200);
  });
});
