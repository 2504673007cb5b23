import type { IDataObject, IExecuteFunctions } from 'n8n-workflow';

import { codeTetherRequest } from '../../transport';

export const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled'];
/** Statuses Wait for Completion stops at: the terminal ones and a question for a human. */
export const SETTLED_STATUSES = [...TERMINAL_STATUSES, 'needs_input'];

export function taskPath(taskId: string): string {
	return `/automation/tasks/${encodeURIComponent(taskId.trim())}`;
}

export async function getTask(
	this: IExecuteFunctions,
	taskId: string,
	itemIndex: number,
	waitSeconds?: number,
): Promise<IDataObject> {
	const qs: IDataObject = {};
	if (waitSeconds !== undefined && waitSeconds > 0) qs.wait = waitSeconds;
	const { body } = await codeTetherRequest.call(this, 'GET', taskPath(taskId), {
		qs,
		itemIndex,
		abortSignal: this.getExecutionCancelSignal(),
		// The server holds a long poll for up to `wait` seconds; leave room for the answer.
		timeout: ((waitSeconds ?? 0) + 30) * 1000,
	});
	return body;
}
