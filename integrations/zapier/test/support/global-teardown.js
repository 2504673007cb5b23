'use strict';

// Stops the `codetether dev` that global-setup.js started (its whole process group: API,
// worker and Temporal), then removes its data dir.

const fs = require('fs');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (_err) {
    return false;
  }
};

module.exports = async () => {
  const file = process.env.CODETETHER_ZAPIER_STACK;
  if (!file || !fs.existsSync(file)) return;
  const stack = JSON.parse(fs.readFileSync(file, 'utf8'));
  try {
    process.kill(stack.pid, 'SIGTERM'); // codetether dev stops its children in order
  } catch (_err) {
    return;
  }
  for (let i = 0; i < 120 && alive(stack.pid); i += 1) await sleep(250);
  if (alive(stack.pid)) process.kill(-stack.pid, 'SIGKILL');
  if (!process.env.KEEP_CODETETHER_DATA) fs.rmSync(stack.dataDir, { recursive: true, force: true });
};
