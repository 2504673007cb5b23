import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { codeTetherRequest } from '../../transport';
import { EVENT_OPTIONS } from '../../../shared/events';
import { parseOutputSchema, parseTags } from '../../../shared/fields';

const showOnlyForCreate = { resource: ['task'], operation: ['create'] };

export const description: INodeProperties[] = [
	{
		displayName: 'Title',
		name: 'title',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'Analyze customer feedback',
		description: 'Short name of the task (1 to 200 characters)',
		displayOptions: { show: showOnlyForCreate },
	},
	{
		displayName: 'Description',
		name: 'description',
		type: 'string',
		typeOptions: { rows: 4 },
		required: true,
		default: '',
		description: 'What the agent should do: the prompt',
		displayOptions: { show: showOnlyForCreate },
	},
	{
		displayName: 'Additional Fields',
		name: 'additionalFields',
		type: 'collection',
		placeholder: 'Add Field',
		default: {},
		displayOptions: { show: showOnlyForCreate },
		options: [
			{
				displayName: 'Agent Type',
				name: 'agentType',
				type: 'options',
				default: 'general',
				options: [
					{ name: 'Build', value: 'build', description: 'Changes code and may push it' },
					{ name: 'Explore', value: 'explore', description: 'Reads and searches, read-only' },
					{ name: 'General', value: 'general', description: 'Every tool' },
					{ name: 'Plan', value: 'plan', description: 'Reads and writes a plan.md, never edits code' },
				],
			},
			{
				displayName: 'Callback URL',
				name: 'callbackUrl',
				type: 'string',
				default: '',
				placeholder: '={{ $execution.resumeUrl }}',
				description:
					'Receives exactly one POST, the terminal event. Set it to {{ $execution.resumeUrl }} and add a Wait node (On Webhook Call, POST) to resume this execution without polling.',
			},
			{
				displayName: 'Codebase Name or ID',
				name: 'codebaseId',
				type: 'options',
				typeOptions: { loadOptionsMethod: 'getCodebases' },
				default: '',
				description:
					'Repository the agent works in. Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
			},
			{
				displayName: 'Idempotency Key',
				name: 'idempotencyKey',
				type: 'string',
				default: '',
				description: 'Retrying with the same key returns the first task instead of creating another',
			},
			{
				displayName: 'Metadata',
				name: 'metadata',
				type: 'json',
				default: '{}',
				description: 'A JSON object (at most 16 KiB) stored with the task and returned as given',
			},
			{
				displayName: 'Model Name or ID',
				name: 'model',
				type: 'options',
				typeOptions: { loadOptionsMethod: 'getModels' },
				default: '',
				description:
					'Model to run the agent on (default: the server\'s default). Choose from the list, or specify an ID using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
			},
			{
				displayName: 'Output Schema',
				name: 'outputSchema',
				type: 'json',
				default: '',
				placeholder:
					'{ "type": "object", "properties": { "sentiment": { "type": "string", "enum": ["positive", "negative"] } }, "required": ["sentiment"] }',
				description:
					'A JSON Schema (root "type": "object", at most 16 KiB) the answer must match. The finished task then carries the answer as an object in <code>result_json</code>: after Wait for Completion, map its fields from there (for example result_json.sentiment).',
			},
			{
				displayName: 'Priority',
				name: 'priority',
				type: 'number',
				default: 0,
				description: 'Higher runs first when your running limit is reached',
			},
			{
				displayName: 'Tags',
				name: 'tags',
				type: 'string',
				default: '',
				placeholder: 'feedback, batch:42',
				description:
					'Comma-separated labels (at most 20, each 1 to 64 letters, digits or _ . : -) to find, filter and cancel tasks by.'
			},
			{
				displayName: 'Webhook Events',
				name: 'webhookEvents',
				type: 'multiOptions',
				options: EVENT_OPTIONS,
				default: [],
				description:
					'Events the Webhook URL receives (default: Task Needs Input and the three terminal events)',
			},
			{
				displayName: 'Webhook URL',
				name: 'webhookUrl',
				type: 'string',
				default: '',
				description: "Receives this task's events, signed with the server's webhook secret",
			},
		],
	},
];

function parseMetadata(this: IExecuteFunctions, value: unknown, itemIndex: number): IDataObject {
	if (value === undefined || value === '') return {};
	let parsed: unknown = value;
	if (typeof value === 'string') {
		try {
			parsed = JSON.parse(value);
		} catch {
			throw new NodeOperationError(this.getNode(), 'Metadata must be a JSON object', { itemIndex });
		}
	}
	if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
		throw new NodeOperationError(this.getNode(), 'Metadata must be a JSON object', { itemIndex });
	}
	return parsed as IDataObject;
}

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject> {
	const fields = this.getNodeParameter('additionalFields', itemIndex, {}) as IDataObject;
	const body: IDataObject = {
		title: this.getNodeParameter('title', itemIndex) as string,
		description: this.getNodeParameter('description', itemIndex) as string,
	};
	if (fields.agentType) body.agent_type = fields.agentType;
	if (fields.model) body.model = fields.model;
	if (fields.codebaseId) body.codebase_id = fields.codebaseId;
	if (fields.priority !== undefined && fields.priority !== '') body.priority = Number(fields.priority);
	if (fields.webhookUrl) body.webhook_url = fields.webhookUrl;
	if (Array.isArray(fields.webhookEvents) && fields.webhookEvents.length > 0) {
		body.webhook_events = fields.webhookEvents;
	}
	if (fields.callbackUrl) body.callback_url = fields.callbackUrl;
	try {
		const tags = parseTags(fields.tags);
		if (tags.length > 0) body.tags = tags;
		const outputSchema = parseOutputSchema(fields.outputSchema);
		if (outputSchema) body.output_schema = outputSchema;
	} catch (error) {
		throw new NodeOperationError(this.getNode(), (error as Error).message, { itemIndex });
	}
	const metadata = parseMetadata.call(this, fields.metadata, itemIndex);
	if (Object.keys(metadata).length > 0) body.metadata = metadata;
	const headers: Record<string, string> = {};
	if (fields.idempotencyKey) headers['Idempotency-Key'] = String(fields.idempotencyKey);
	const { body: task } = await codeTetherRequest.call(this, 'POST', '/automation/tasks', {
		body,
		headers,
		itemIndex,
	});
	return task;
}
