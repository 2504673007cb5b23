// Runs the app's request specifications the way Make executes them, on top of the IML evaluator:
// base merged under each module, condition, qs/body encoding, response.valid/error (problem+json
// becomes a Make error), repeat, iterate, limit, pagination, output, data, and the polling
// trigger's memory of what it has already seen. Every request is also written to a log after
// `log.sanitize`, so the tests can check what Make would show in its execution log.
import { render, renderString, truthy, isEmpty, OMIT } from './iml.mjs';

export class MakeError extends Error {
	constructor(type, message, statusCode) {
		super(message);
		this.name = type;
		this.type = type;
		this.statusCode = statusCode;
	}
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function mergeResponse(baseResponse = {}, moduleResponse = {}) {
	const out = { ...baseResponse, ...moduleResponse };
	if (baseResponse.error && moduleResponse.error && typeof moduleResponse.error === 'object') {
		out.error = { ...baseResponse.error, ...moduleResponse.error };
	}
	return out;
}

/** The module's request with the base's directives underneath (modules override the base). */
export function withBase(base, spec) {
	if (!base) return spec;
	const merged = { ...spec };
	merged.headers = { ...(base.headers ?? {}), ...(spec.headers ?? {}) };
	if (base.qs || spec.qs) merged.qs = { ...(base.qs ?? {}), ...(spec.qs ?? {}) };
	merged.response = mergeResponse(base.response, spec.response);
	merged.log = { sanitize: [...(base.log?.sanitize ?? []), ...(spec.log?.sanitize ?? [])] };
	merged.baseUrl = base.baseUrl;
	return merged;
}

function sanitize(record, paths) {
	const copy = structuredClone(record);
	for (const path of paths ?? []) {
		const keys = path.split('.');
		const last = keys.pop().toLowerCase();
		let node = copy;
		for (const k of keys) node = node?.[k];
		if (!node || typeof node !== 'object') continue;
		// Header names are case-insensitive; so is the match here.
		for (const name of Object.keys(node)) {
			if (name.toLowerCase() === last) node[name] = '******';
		}
	}
	return copy;
}

function encodeQs(qs) {
	const params = new URLSearchParams();
	for (const [k, v] of Object.entries(qs ?? {})) {
		if (v === undefined || v === null || v === OMIT) continue;
		for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one));
	}
	const s = params.toString();
	return s ? `?${s}` : '';
}

/**
 * One Make request: render, send, check, then output items.
 * @param spec   the request specification (module communication, RPC, attach, ...)
 * @param ctx    IML variables: connection, parameters, webhook, temp, data, common, oauth, query, ...
 * @param opts   {base, fetch, log, state}: base directives, fetch function, an array for the
 *               sanitized request log, and (for polling triggers) the trigger state
 */
export async function execute(spec, ctx, opts = {}) {
	// Several requests: run in order, `temp` carried from one to the next; what the module
	// outputs is the last request's output.
	if (Array.isArray(spec)) {
		let last;
		let temp = { ...(ctx.temp ?? {}) };
		let requests = 0;
		for (const one of spec) {
			const r = await execute(one, { ...ctx, temp }, opts);
			requests += r.requests;
			temp = r.temp;
			if (!r.skipped) last = r;
		}
		return { ...last, temp, requests };
	}
	const doFetch = opts.fetch ?? fetch;
	const log = opts.log ?? [];
	const full = withBase(opts.base, spec);
	const response = full.response ?? {};
	const outputs = [];
	let temp = { ...(ctx.temp ?? {}) };
	let pageCtx = {};
	let page = 1;
	let requests = 0;
	let result = { outputs, data: undefined, temp, requests: 0, statusCode: undefined, body: undefined };

	if (full.condition !== undefined) {
		const cond = typeof full.condition === 'object' ? full.condition.condition : full.condition;
		if (!truthy(render(cond, { ...ctx, temp }))) return { ...result, skipped: true };
	}

	const limitExpr = response.limit;
	for (;;) {
		let repeats = 0;
		let res;
		for (;;) {
			res = await send();
			const rctx = { ...ctx, temp, ...res };
			if (!full.repeat || !truthy(renderString(full.repeat.condition, rctx))) break;
			repeats += 1;
			if (full.repeat.limit !== undefined && repeats >= full.repeat.limit) break;
			await sleep(full.repeat.delay ?? 0);
		}
		const rctx = { ...ctx, temp, ...res };
		result.statusCode = res.statusCode;
		result.body = res.body;
		if (response.temp) {
			temp = { ...temp, ...render(response.temp, rctx) };
			result.temp = temp;
		}
		if (response.data) result.data = render(response.data, { ...rctx, temp });
		if (response.uid !== undefined) result.uid = render(response.uid, rctx);
		if (response.metadata) result.metadata = render(response.metadata, rctx);

		const limit = limitExpr === undefined ? Infinity : Number(render(limitExpr, rctx));
		if (response.iterate) {
			const iterSpec = typeof response.iterate === 'object' ? response.iterate : { container: response.iterate };
			const items = render(iterSpec.container, rctx) ?? [];
			for (const item of items) {
				const ictx = { ...rctx, item };
				if (iterSpec.condition !== undefined && !truthy(render(iterSpec.condition, ictx))) continue;
				if (outputs.length >= limit) break;
				outputs.push({ item, output: response.output === undefined ? item : render(response.output, ictx) });
			}
		} else if (response.output !== undefined) {
			outputs.push({ item: res.body, output: render(response.output, rctx) });
		} else if (!response.data) {
			outputs.push({ item: res.body, output: res.body });
		}

		if (!full.pagination || outputs.length >= limit) break;
		if (full.pagination.condition !== undefined && !truthy(render(full.pagination.condition, rctx))) break;
		if (!response.iterate) break;
		page += 1;
		pageCtx = { ...render({ qs: full.pagination.qs ?? {}, body: full.pagination.body }, { ...rctx, pagination: { page } }) };
		if (page > 1000) throw new Error('pagination did not end');
	}
	result.requests = requests;
	result.outputs = outputs.map((o) => o.output);
	result.items = outputs.map((o) => o.item);
	return result;

	async function send() {
		// Request-less communication (no url): the response directives work on the parameters.
		if (full.url === undefined) return { statusCode: undefined, headers: {}, body: undefined };
		// Request-level temp is evaluated before every request, with the temp so far in scope.
		if (full.temp) {
			temp = { ...temp, ...render(full.temp, { ...ctx, temp }) };
			result.temp = temp;
		}
		const rctx = { ...ctx, temp, pagination: { page } };
		let url = renderString(full.url ?? '', rctx);
		if (full.baseUrl && url.startsWith('/')) url = renderString(full.baseUrl, rctx) + url;
		const method = (full.method ? renderString(full.method, rctx) : 'GET') || 'GET';
		const headers = render(full.headers ?? {}, rctx);
		const mergeWithParent = full.pagination?.mergeWithParent !== false;
		const qs = { ...(page > 1 && !mergeWithParent ? {} : render(full.qs ?? {}, rctx)), ...(pageCtx.qs ?? {}) };
		let body = full.body === undefined ? undefined : render(full.body, rctx);
		if (body === OMIT || (method === 'GET' && isEmpty(body))) body = undefined;
		const type = full.type ?? 'json';
		let payload;
		if (body !== undefined) {
			if (type === 'urlencoded') {
				payload = new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString();
				headers['Content-Type'] ??= 'application/x-www-form-urlencoded';
			} else if (type === 'text' || type === 'string' || type === 'raw') {
				payload = typeof body === 'string' ? body : JSON.stringify(body);
			} else {
				payload = JSON.stringify(body);
				headers['Content-Type'] ??= 'application/json';
			}
		}
		const target = url + encodeQs(qs);
		requests += 1;
		const entry = { request: { method, url: target, headers: { ...headers }, body: body === undefined ? undefined : structuredClone(body) } };
		const started = Date.now();
		const r = await doFetch(target, { method, headers, body: payload, redirect: 'manual' });
		const text = await r.text();
		let parsed = text;
		const ctype = r.headers.get('content-type') ?? '';
		if (text && (ctype.includes('json') || /^[[{]/.test(text))) {
			try {
				parsed = JSON.parse(text);
			} catch {
				parsed = text;
			}
		}
		const resHeaders = Object.fromEntries([...r.headers.entries()].map(([k, v]) => [k.toLowerCase(), v]));
		entry.response = { status: r.status, headers: resHeaders, body: parsed, ms: Date.now() - started };
		log.push(sanitize(entry, full.log?.sanitize));
		const res = { statusCode: r.status, headers: resHeaders, body: parsed === '' ? undefined : parsed };
		const vctx = { ...ctx, temp, ...res };
		const valid = response.valid === undefined ? r.status >= 200 && r.status < 400 : truthy(render(typeof response.valid === 'object' ? response.valid.condition : response.valid, vctx));
		if (!valid) throw makeError(response.error, vctx, r.status);
		return res;
	}
}

function makeError(errorSpec, ctx, status) {
	let spec = errorSpec;
	if (spec && typeof spec === 'object' && spec[String(status)]) spec = spec[String(status)];
	if (typeof spec === 'string') return new MakeError('RuntimeError', toText(renderString(spec, ctx)), status);
	if (spec && typeof spec === 'object') {
		const message = render(spec.message ?? '', ctx);
		const type = spec.type ? render(spec.type, ctx) : 'RuntimeError';
		return new MakeError(type, String(message), status);
	}
	return new MakeError('RuntimeError', `HTTP ${status}`, status);
}

function toText(v) {
	return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * A polling trigger run: Make remembers the newest date (or id) it has output and emits only
 * items after it; the epoch's chosen start seeds that memory.
 */
export async function pollTrigger(spec, ctx, state, opts = {}) {
	const result = await execute(spec, ctx, opts);
	const trigger = spec.response.trigger;
	const fresh = [];
	const rctx = (item) => ({ ...ctx, item, body: result.body });
	for (let i = 0; i < result.items.length; i++) {
		const item = result.items[i];
		const key = trigger.type === 'date' ? new Date(render(trigger.date, rctx(item))).getTime() : render(trigger.id, rctx(item));
		const id = render(trigger.id, rctx(item));
		const seen = trigger.type === 'date' ? state.date !== undefined && (key < state.date || (key === state.date && (state.ids === undefined || state.ids.includes(id)))) : state.ids?.includes(id);
		if (!seen) fresh.push({ key, id, output: result.outputs[i] });
	}
	// Items come newest first (order: desc); Make outputs them oldest first.
	const ordered = trigger.order === 'desc' ? fresh.reverse() : fresh;
	for (const f of ordered) {
		if (trigger.type === 'date') {
			if (state.date === undefined || f.key > state.date) state.ids = [];
			state.date = Math.max(state.date ?? -Infinity, f.key);
			if (f.key === state.date) state.ids.push(f.id);
		} else {
			(state.ids ??= []).push(f.id);
		}
	}
	return ordered.map((f) => f.output);
}
