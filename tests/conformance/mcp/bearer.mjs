// Loaded into the conformance CLI with `node --import`: the suite's server mode connects without
// credentials, and /mcp needs a bearer token. Every request to MCP_SERVER_URL (fetch and undici
// alike go through the global dispatcher) gets `Authorization: Bearer $MCP_BEARER_TOKEN`; all
// other headers, Host and Origin included, stay as the suite sent them.
import { Agent, setGlobalDispatcher } from "undici";

const token = process.env.MCP_BEARER_TOKEN;
const target = new URL(process.env.MCP_SERVER_URL);

function withAuthorization(headers) {
  const value = `Bearer ${token}`;
  if (headers == null) return { authorization: value };
  if (Array.isArray(headers)) return [...headers, "authorization", value];
  if (typeof headers[Symbol.iterator] === "function") return [...headers, ["authorization", value]];
  return { ...headers, authorization: value };
}

const addAuthorization = (dispatch) => (opts, handler) => {
  const url = new URL(opts.path, opts.origin);
  if (url.origin === target.origin && url.pathname === target.pathname) {
    opts = { ...opts, headers: withAuthorization(opts.headers) };
  }
  return dispatch(opts, handler);
};

setGlobalDispatcher(new Agent().compose(addAuthorization));
