'use strict';

// Connects a Zapier account the way Zapier does: authorizeUrl (+ PKCE, as enablePkce makes
// Zapier add), sign-in and consent over HTTP, then the app's getAccessToken.

const zapier = require('zapier-platform-core');

const App = require('../../index');
const { stack, pkcePair, signInAndConsent } = require('./helpers');

const appTester = zapier.createAppTester(App);

const connect = async () => {
  const s = stack();
  const state = `st-${Date.now()}`;
  const url = new URL(
    await appTester(App.authentication.oauth2Config.authorizeUrl, { inputData: { redirect_uri: s.redirectUri, state } }),
  );
  const { verifier, challenge } = pkcePair();
  url.searchParams.set('code_challenge', challenge);
  url.searchParams.set('code_challenge_method', 'S256');
  const query = await signInAndConsent(url.toString(), s);
  if (query.state !== state || !query.code) throw new Error(`no code in the redirect: ${JSON.stringify(query)}`);
  const authData = await appTester(App.authentication.oauth2Config.getAccessToken, {
    inputData: { code: query.code, redirect_uri: s.redirectUri, state, code_verifier: verifier },
  });
  return { authData, appTester, App };
};

module.exports = { connect, appTester, App };
