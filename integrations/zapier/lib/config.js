'use strict';

// The CodeTether instance this app talks to. Hosted by default; self-hosted instances set
// CODETETHER_BASE_URL in the integration's environment (`zapier env:set`).
const DEFAULT_BASE_URL = 'https://api.codetether.io';

const baseUrl = () => (process.env.CODETETHER_BASE_URL || DEFAULT_BASE_URL).replace(/\/+$/, '');

const apiUrl = (path) => `${baseUrl()}${path}`;

// What the connection asks for (CONTRACT §5). account:manage is never grantable to OAuth tokens.
const SCOPES = ['tasks:read', 'tasks:write', 'messages:write', 'codebases:read', 'webhooks:manage'];

const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled'];

module.exports = { DEFAULT_BASE_URL, baseUrl, apiUrl, SCOPES, TERMINAL_STATUSES };
