import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { collectPages, type Page } from '../../../shared/paging';
import { parseTags } from '../../../shared/fields';
import {
	AGENT_TYPE_FILTER,
	CREATED_AFTER_FILTER,
	CREATED_BEFORE_FILTER,
	MODEL_FILTER,
} from '../../../shared/taskFilters';
import { codeTetherRequest } from '../../transport';

const showOnlyForGetAll = { resource: ['task'], operation: ['getAll'] };

export const STATUS_OPTIONS = [
	{ name: 'Cancelled', value: 'cancelled' },
	{ name: 'Completed', value: 'completed' },
	{ name: 'Failed', value: 'failed' },
	{ name: 'Needs Input', value: 'needs_input' },
	{ name: 'Queued', value: 'queued' },
	{ name: 'Running', value: 'running' },
];

export const description: INodeProperties[] = [
	{
		displayName: 'Return All',
		name: 'returnAll',
		type: 'boolean',
		default: false,
		description: 'Whether to return all results or only up to a given limit',
		displayOptions: { show: showOnlyForGetAll },
	},
	{
		displayName: 'Limit',
		name: 'limit',
		type: 'number',
		typeOptions: { minValue: 1 },
		default: 50,
		description: 'Max number of results to return',
		displayOptions: { show: { ...showOnlyForGetAll, returnAll: [false] } },
	},
	{
		displayName: 'Filters',
		name: 'filters',
		type: 'collection',
		placeholder: 'Add Filter',
		default: {},
		displayOptions: { show: showOnlyForGetAll },
		options: [
			AGENT_TYPE_FILTER,
			{
				displayName: 'Codebase ID',
				name: 'codebaseId',
				type: 'string',
				default: '',
			},
			CREATED_AFTER_FILTER,
			CREATED_BEFORE_FILTER,
			MODEL_FILTER,
			{
				displayName: 'Status',
				name: 'status',
				type: 'multiOptions',
				options: STATUS_OPTIONS,
				default: [],
			},
			{
				displayName: 'Tags',
				name: 'tags',
				type: 'string',
				default: '',
				placeholder: 'feedback, batch:42',
				description: 'Comma-separated tags; only tasks that have every one of them are returned',
			},
		],
	},
];

export function isoUtc(value: unknown): string {
	const when = new Date(String(value));
	return Number.isNaN(when.getTime()) ? String(value) : when.toISOString();
}

export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject[]> {
	const returnAll = this.getNodeParameter('returnAll', itemIndex, false) as boolean;
	const limit = returnAll ? undefined : (this.getNodeParameter('limit', itemIndex, 50) as number);
	const filters = this.getNodeParameter('filters', itemIndex, {}) as IDataObject;
	const qs: IDataObject = {};
	const status = filters.status;
	if (Array.isArray(status) && status.length > 0) qs.status = status.join(',');
	else if (typeof status === 'string' && status) qs.status = status;
	if (filters.agentType) qs.agent_type = filters.agentType;
	if (filters.model) qs.model = filters.model;
	if (filters.codebaseId) qs.codebase_id = filters.codebaseId;
	if (filters.createdAfter) qs.created_after = isoUtc(filters.createdAfter);
	if (filters.createdBefore) qs.created_before = isoUtc(filters.createdBefore);
	let tags: string[];
	try {
		tags = parseTags(filters.tags);
	} catch (error) {
		throw new NodeOperationError(this.getNode(), (error as Error).message, { itemIndex });
	}
	if (tags.length > 0) qs.tag = tags;

	return await collectPages<IDataObject>(async (pageSize, cursor) => {
		const page: IDataObject = { ...qs, limit: pageSize };
		if (cursor) page.cursor = cursor;
		const { body } = await codeTetherRequest.call(this, 'GET', '/automation/tasks', {
			qs: page,
			itemIndex,
		});
		return body as unknown as Page<IDataObject>;
	}, limit);
}
