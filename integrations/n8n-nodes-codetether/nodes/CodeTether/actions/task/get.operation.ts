import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import { getTask } from './common';

export const taskIdField = (operation: string, description: string): INodeProperties => ({
	displayName: 'Task ID',
	name: 'taskId',
	type: 'string',
	required: true,
	default: '',
	placeholder: 'task_...',
	description,
	displayOptions: { show: { resource: ['task'], operation: [operation] } },
});

export const description: INodeProperties[] = [taskIdField('get', 'The task to fetch')];

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject> {
	const taskId = this.getNodeParameter('taskId', itemIndex) as string;
	return await getTask.call(this, taskId, itemIndex);
}
