import type { INodePropertyOptions } from 'n8n-workflow';

/** The seven task event types (CodeTether's webhook events, in lifecycle order for readers). */
export const EVENT_OPTIONS: INodePropertyOptions[] = [
	{ name: 'Task Cancelled', value: 'task.cancelled' },
	{ name: 'Task Completed', value: 'task.completed' },
	{ name: 'Task Created', value: 'task.created' },
	{ name: 'Task Failed', value: 'task.failed' },
	{ name: 'Task Needs Input', value: 'task.needs_input' },
	{ name: 'Task Progress', value: 'task.progress' },
	{ name: 'Task Started', value: 'task.started' },
];
