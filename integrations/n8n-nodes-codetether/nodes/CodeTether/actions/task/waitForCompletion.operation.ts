import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { getTask, SETTLED_STATUSES } from './common';
import { taskIdField } from './get.operation';

/** The server holds one long poll for at most this long (`?wait=` accepts 0..60). */
const LONG_POLL_SECONDS = 30;

export const description: INodeProperties[] = [
	taskIdField('waitForCompletion', 'The task to wait for'),
	{
		displayName: 'Timeout',
		name: 'timeout',
		type: 'number',
		typeOptions: { minValue: 0 },
		default: 300,
		description:
			'Seconds to wait at most. The node returns the task as soon as it is completed, failed, cancelled or needs input; after the timeout it returns the task as it is then (check its status).',
		displayOptions: { show: { resource: ['task'], operation: ['waitForCompletion'] } },
	},
];

/**
 * Long-polls `GET /tasks/{id}?wait=` until the task settles or the timeout passes. The server
 * answers at once when the task settles, so there is no client-side sleeping; cancelling the
 * execution aborts the poll in flight.
 */
export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject> {
	const taskId = this.getNodeParameter('taskId', itemIndex) as string;
	const timeout = Math.max(0, Number(this.getNodeParameter('timeout', itemIndex, 300)));
	const signal = this.getExecutionCancelSignal();
	const deadline = Date.now() + timeout * 1000;
	for (;;) {
		if (signal?.aborted) {
			throw new NodeOperationError(this.getNode(), 'The execution was cancelled while waiting', {
				itemIndex,
			});
		}
		const remaining = Math.ceil((deadline - Date.now()) / 1000);
		const wait = Math.min(Math.max(remaining, 0), LONG_POLL_SECONDS);
		const task = await getTask.call(this, taskId, itemIndex, wait);
		if (SETTLED_STATUSES.includes(String(task.status))) return task;
		// Out of time: hand back the task as it is; its status says it is still going.
		if (remaining <= 0 || Date.now() >= deadline) return task;
	}
}
