import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import * as answer from './answer.operation';
import * as cancel from './cancel.operation';
import * as cancelMany from './cancelMany.operation';
import * as create from './create.operation';
import * as get from './get.operation';
import * as getAll from './getAll.operation';
import * as sendMessage from './sendMessage.operation';
import * as waitForCompletion from './waitForCompletion.operation';

type Operation = (this: IExecuteFunctions, itemIndex: number) => Promise<IDataObject | IDataObject[]>;

export const operations: Record<string, Operation> = {
	answer: answer.execute,
	cancel: cancel.execute,
	cancelMany: cancelMany.execute,
	create: create.execute,
	get: get.execute,
	getAll: getAll.execute,
	sendMessage: sendMessage.execute,
	waitForCompletion: waitForCompletion.execute,
};

export const description: INodeProperties[] = [
	{
		displayName: 'Operation',
		name: 'operation',
		type: 'options',
		noDataExpression: true,
		displayOptions: { show: { resource: ['task'] } },
		options: [
			{
				name: 'Answer Question',
				value: 'answer',
				action: 'Answer the question a task asked',
				description: 'Reply to a task that is waiting in Needs Input',
			},
			{
				name: 'Cancel',
				value: 'cancel',
				action: 'Cancel a task',
				description: 'Stop a queued, running or waiting task',
			},
			{
				name: 'Cancel Many',
				value: 'cancelMany',
				action: 'Cancel many tasks',
				description: 'Stop every task with the given IDs, or every task that matches filters such as a tag',
			},
			{
				name: 'Create',
				value: 'create',
				action: 'Create a task',
				description: 'Start an AI-agent task',
			},
			{
				name: 'Get',
				value: 'get',
				action: 'Get a task',
				description: 'Fetch a task and its result',
			},
			{
				name: 'Get Many',
				value: 'getAll',
				action: 'Get many tasks',
				description: 'List tasks, newest first',
			},
			{
				name: 'Send Message',
				value: 'sendMessage',
				action: 'Send a message to a task',
				description: "Add a message to a task's conversation",
			},
			{
				name: 'Wait for Completion',
				value: 'waitForCompletion',
				action: 'Wait for a task to finish',
				description: 'Wait until the task is completed, failed, cancelled or needs input',
			},
		],
		default: 'create',
	},
	...create.description,
	...get.description,
	...getAll.description,
	...waitForCompletion.description,
	...cancel.description,
	...cancelMany.description,
	...sendMessage.description,
	...answer.description,
];
