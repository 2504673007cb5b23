/** How CodeTether's problem+json errors (RFC 9457) are turned into what an n8n user reads. */

export interface ProblemSummary {
	/** One line for the error's title: the problem's `detail` (else its title). */
	message: string;
	/** The stable `code`, the HTTP status and the request id, for support and for IF nodes. */
	description: string;
	code: string;
	httpCode: string;
}

function asObject(body: unknown): Record<string, unknown> {
	if (typeof body === 'string') {
		try {
			const parsed: unknown = JSON.parse(body);
			return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
		} catch {
			return body ? { detail: body } : {};
		}
	}
	return body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : {};
}

export function parseProblem(body: unknown): Record<string, unknown> {
	return asObject(body);
}

export function summarizeProblem(status: number, body: unknown): ProblemSummary {
	const problem = asObject(body);
	const code = typeof problem.code === 'string' ? problem.code : `http_${status}`;
	const detail =
		(typeof problem.detail === 'string' && problem.detail) ||
		(typeof problem.title === 'string' && problem.title) ||
		`CodeTether answered HTTP ${status}`;
	const parts = [`code: ${code}`, `HTTP ${status}`];
	if (typeof problem.request_id === 'string') parts.push(`request ${problem.request_id}`);
	const fieldErrors = Array.isArray(problem.errors) ? problem.errors : [];
	for (const item of fieldErrors.slice(0, 5)) {
		const entry = asObject(item);
		const where = Array.isArray(entry.loc) ? entry.loc.join('.') : entry.field ?? entry.pointer;
		const what = entry.msg ?? entry.message ?? entry.detail;
		if (what !== undefined) parts.push(where ? `${String(where)}: ${String(what)}` : String(what));
	}
	return { message: detail, description: parts.join(' · '), code, httpCode: String(status) };
}

/** Longest we wait on a 429 before one retry; a longer Retry-After fails the call instead. */
export const MAX_RETRY_AFTER_SECONDS = 60;
/** Retries after 429 answers, per request. */
export const MAX_RATE_LIMIT_RETRIES = 3;

/**
 * Seconds to wait before retrying a 429, from `Retry-After` (seconds or an HTTP date), or
 * undefined when the call should fail instead (too many attempts, or too long a wait).
 */
export function retryAfterSeconds(
	headerValue: string | string[] | undefined,
	attempt: number,
	nowMs: number,
): number | undefined {
	if (attempt >= MAX_RATE_LIMIT_RETRIES) return undefined;
	const raw = Array.isArray(headerValue) ? headerValue[0] : headerValue;
	let seconds = 1;
	if (raw !== undefined && raw.trim() !== '') {
		if (/^\d+$/.test(raw.trim())) {
			seconds = Number(raw.trim());
		} else {
			const when = Date.parse(raw);
			if (Number.isNaN(when)) return 1;
			seconds = Math.ceil((when - nowMs) / 1000);
		}
	}
	seconds = Math.max(seconds, 1);
	return seconds > MAX_RETRY_AFTER_SECONDS ? undefined : seconds;
}
