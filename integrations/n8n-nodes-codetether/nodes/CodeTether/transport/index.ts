import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	IWebhookFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError, NodeOperationError, sleep } from 'n8n-workflow';

import { retryAfterSeconds, summarizeProblem } from '../../shared/problem';

export type CodeTetherContext =
	| IExecuteFunctions
	| ILoadOptionsFunctions
	| IHookFunctions
	| IWebhookFunctions;

export interface RequestOptions {
	qs?: IDataObject;
	body?: IDataObject;
	headers?: Record<string, string>;
	/** Aborts the request (and a 429 back-off) when the execution is cancelled. */
	abortSignal?: AbortSignal;
	/** Answer statuses handed back instead of thrown (e.g. 404 when unsubscribing). */
	allowStatuses?: number[];
	itemIndex?: number;
	/** Request timeout in ms (long polls need more than the default). */
	timeout?: number;
}

export interface ApiResponse {
	statusCode: number;
	body: IDataObject;
}

/**
 * Waits `seconds`, in one-second steps so a cancelled execution stops waiting within a second
 * (n8n-workflow 2.41's `sleep` takes no abort signal).
 */
async function pause(seconds: number, signal?: AbortSignal): Promise<void> {
	for (let waited = 0; waited < seconds; waited++) {
		if (signal?.aborted) return;
		await sleep(1000);
	}
}

function credentialType(this: CodeTetherContext): string {
	const authentication = this.getNodeParameter('authentication', 0, 'apiKey') as string;
	return authentication === 'oAuth2' ? 'codeTetherOAuth2Api' : 'codeTetherApi';
}

/**
 * The one way the nodes talk to CodeTether: authenticated by n8n from the chosen credential,
 * problem+json mapped to `NodeApiError` (detail as the message, code in the description), and
 * `429` retried after `Retry-After` a bounded number of times.
 */
export async function codeTetherRequest(
	this: CodeTetherContext,
	method: IHttpRequestMethods,
	path: string,
	options: RequestOptions = {},
): Promise<ApiResponse> {
	const type = credentialType.call(this);
	const credentials = await this.getCredentials<{ domain?: string }>(type);
	const domain = String(credentials.domain ?? '').replace(/\/+$/, '');
	if (!domain) {
		throw new NodeOperationError(this.getNode(), 'The credential has no API domain', {
			itemIndex: options.itemIndex,
		});
	}
	const request: IHttpRequestOptions = {
		method,
		url: `${domain}/v1${path}`,
		qs: options.qs,
		// Repeatable filters (`tag`) go as `tag=a&tag=b`, the way the API reads them.
		arrayFormat: 'repeat',
		headers: { Accept: 'application/json', ...options.headers },
		json: true,
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
		abortSignal: options.abortSignal,
		timeout: options.timeout,
	};
	if (options.body !== undefined) request.body = options.body;

	for (let attempt = 0; ; attempt++) {
		const response = (await this.helpers.httpRequestWithAuthentication.call(this, type, request)) as {
			statusCode: number;
			headers: Record<string, string | string[] | undefined>;
			body: unknown;
		};
		const status = response.statusCode;
		if (status < 400 || options.allowStatuses?.includes(status)) {
			return { statusCode: status, body: (response.body ?? {}) as IDataObject };
		}
		if (status === 429) {
			const wait = retryAfterSeconds(response.headers['retry-after'], attempt, Date.now());
			if (wait !== undefined) {
				await pause(wait, options.abortSignal);
				continue;
			}
		}
		const summary = summarizeProblem(status, response.body);
		const problem = (typeof response.body === 'object' && response.body !== null
			? response.body
			: { detail: summary.message }) as JsonObject;
		throw new NodeApiError(this.getNode(), problem, {
			message: summary.message,
			description: summary.description,
			httpCode: summary.httpCode,
			itemIndex: options.itemIndex,
		});
	}
}
