import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import { codeTetherRequest } from '../../transport';
import { taskPath } from './common';
import { taskIdField } from './get.operation';

export const description: INodeProperties[] = [
	taskIdField('sendMessage', 'The task whose conversation receives the message'),
	{
		displayName: 'Message',
		name: 'message',
		type: 'string',
		typeOptions: { rows: 3 },
		required: true,
		default: '',
		description:
			'Answers a pending question, reaches a running agent at its next turn, or starts a follow-up run of a finished task',
		displayOptions: { show: { resource: ['task'], operation: ['sendMessage'] } },
	},
];

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject> {
	const taskId = this.getNodeParameter('taskId', itemIndex) as string;
	const message = this.getNodeParameter('message', itemIndex) as string;
	const { body } = await codeTetherRequest.call(this, 'POST', `${taskPath(taskId)}/messages`, {
		body: { message },
		itemIndex,
	});
	return body;
}
