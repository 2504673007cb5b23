import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { codeTetherRequest } from '../../transport';
import { getTask, taskPath } from './common';
import { taskIdField } from './get.operation';

export const description: INodeProperties[] = [
	taskIdField('answer', 'The task that asked a question (status Needs Input)'),
	{
		displayName: 'Answer',
		name: 'message',
		type: 'string',
		typeOptions: { rows: 3 },
		required: true,
		default: '',
		description: "The reply to the agent's question",
		displayOptions: { show: { resource: ['task'], operation: ['answer'] } },
	},
];

/** Answers the task's pending question by its `required_action.id`, so a stale answer is refused. */
export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject> {
	const taskId = this.getNodeParameter('taskId', itemIndex) as string;
	const message = this.getNodeParameter('message', itemIndex) as string;
	const task = await getTask.call(this, taskId, itemIndex);
	const action = task.required_action as IDataObject | null | undefined;
	if (task.status !== 'needs_input' || !action?.id) {
		throw new NodeOperationError(this.getNode(), 'The task is not waiting for an answer', {
			description: `Its status is "${String(task.status)}". Answer Question works only while the status is needs_input.`,
			itemIndex,
		});
	}
	const { body } = await codeTetherRequest.call(this, 'POST', `${taskPath(taskId)}/input`, {
		body: { message, required_action_id: action.id },
		itemIndex,
	});
	return body;
}
