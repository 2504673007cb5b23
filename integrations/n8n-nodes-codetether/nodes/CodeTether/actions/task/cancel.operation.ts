import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import { codeTetherRequest } from '../../transport';
import { taskPath } from './common';
import { taskIdField } from './get.operation';

export const description: INodeProperties[] = [
	taskIdField('cancel', 'The task to cancel (queued, running or waiting for input)'),
];

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject> {
	const taskId = this.getNodeParameter('taskId', itemIndex) as string;
	const { body } = await codeTetherRequest.call(this, 'DELETE', taskPath(taskId), { itemIndex });
	return body;
}
