'use strict';

// Starts a real `codetether dev` on loopback (free ports, a fresh data dir) for the whole jest
// run, registers the OAuth client Zapier would use and two users, and hands the details to the
// tests through the environment (the app reads CODETETHER_BASE_URL, CLIENT_ID, CLIENT_SECRET).

const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const CODETETHER = process.env.CODETETHER_BIN || path.join(REPO, '.venv', 'bin', 'codetether');
// Zapier's redirect URI for a CLI integration (App<id>CLIAPI); the test reads the code from it.
const REDIRECT_URI = 'https://zapier.com/dashboard/auth/oauth/return/App000000CLIAPI/';
const PASSWORD = 'zapier test password 0123';

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

module.exports = async () => {
  if (!fs.existsSync(CODETETHER)) {
    throw new Error(`codetether not found at ${CODETETHER}: run \`make install\` in the repository first`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'codetether-zapier-'));
  const env = {
    ...process.env,
    CODETETHER_DATA_DIR: dataDir,
    CODETETHER_WEBHOOK_ALLOW_PRIVATE: 'true',
    CODETETHER_DEFAULT_MODEL: 'demo',
  };
  // Other CodeTether settings from the caller's environment must not leak into this stack.
  delete env.CODETETHER_DATABASE_URL;
  delete env.CODETETHER_TEMPORAL_ADDRESS;
  const admin = (args, input) =>
    execFileSync(CODETETHER, args, { env, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'inherit'] }).trim();

  admin(['migrate']);
  const email = `zap-${Date.now()}@example.com`;
  admin(['users', 'create', email, '--tier', 'pro', '--password-stdin'], `${PASSWORD}\n`);
  const client = JSON.parse(admin(['oauth-clients', 'create', '--name', 'Zapier', '--redirect-uri', REDIRECT_URI]));
  const apiKey = admin(['keys', 'create', '--user', email, '--name', 'zapier-tests']);
  const freeEmail = `zap-free-${Date.now()}@example.com`;
  admin(['users', 'create', freeEmail, '--tier', 'free']);
  const freeKey = admin(['keys', 'create', '--user', freeEmail, '--name', 'zapier-429']);

  const [apiPort, temporalPort, uiPort] = [await freePort(), await freePort(), await freePort()];
  const log = fs.openSync(path.join(dataDir, 'dev.log'), 'a');
  const dev = spawn(
    CODETETHER,
    ['dev', '--api-port', String(apiPort), '--temporal-port', String(temporalPort), '--ui-port', String(uiPort), '--data-dir', dataDir],
    { env, detached: true, stdio: ['ignore', log, log] },
  );
  const baseUrl = `http://127.0.0.1:${apiPort}`;
  const deadline = Date.now() + 120000;
  for (;;) {
    if (dev.exitCode !== null) {
      throw new Error(`codetether dev exited (${dev.exitCode}); see ${path.join(dataDir, 'dev.log')}`);
    }
    try {
      const r = await fetch(`${baseUrl}/readyz`);
      if (r.status === 200) break;
    } catch (_err) {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`codetether dev not ready after 120 s; see ${dataDir}`);
    await sleep(250);
  }

  const stack = {
    baseUrl,
    dataDir,
    pid: dev.pid,
    redirectUri: REDIRECT_URI,
    email,
    password: PASSWORD,
    apiKey,
    freeKey,
    clientId: client.client_id,
    clientSecret: client.client_secret,
  };
  const stackFile = path.join(dataDir, 'stack.json');
  fs.writeFileSync(stackFile, JSON.stringify(stack));
  process.env.CODETETHER_ZAPIER_STACK = stackFile;
  process.env.CODETETHER_BASE_URL = baseUrl;
  process.env.CLIENT_ID = client.client_id;
  process.env.CLIENT_SECRET = client.client_secret;
};
