import type { IDataObject, IExecuteFunctions, INodeProperties } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { parseTags } from '../../../shared/fields';
import {
	AGENT_TYPE_FILTER,
	CREATED_AFTER_FILTER,
	CREATED_BEFORE_FILTER,
	MODEL_FILTER,
} from '../../../shared/taskFilters';
import { codeTetherRequest } from '../../transport';
import { isoUtc } from './getAll.operation';

const showOnlyForCancelMany = { resource: ['task'], operation: ['cancelMany'] };

/** Only these can still be cancelled; the others are finished already. */
const CANCELLABLE_STATUS_OPTIONS = [
	{ name: 'Needs Input', value: 'needs_input' },
	{ name: 'Queued', value: 'queued' },
	{ name: 'Running', value: 'running' },
];

export const description: INodeProperties[] = [
	{
		displayName: 'Select Tasks By',
		name: 'cancelBy',
		type: 'options',
		noDataExpression: true,
		options: [
			{ name: 'Filter', value: 'filter', description: 'Every task of yours that matches the filters' },
			{ name: 'Task IDs', value: 'taskIds', description: 'A list of task IDs' },
		],
		default: 'filter',
		displayOptions: { show: showOnlyForCancelMany },
	},
	{
		displayName: 'Task IDs',
		name: 'taskIds',
		type: 'string',
		required: true,
		default: '',
		placeholder: 'task_01jx..., task_01jy...',
		description: 'Comma-separated task IDs (at most 1,000), or an array from an expression',
		displayOptions: { show: { ...showOnlyForCancelMany, cancelBy: ['taskIds'] } },
	},
	{
		displayName: 'Filters',
		name: 'cancelFilters',
		type: 'collection',
		placeholder: 'Add Filter',
		default: {},
		description: 'Tasks must match every filter given; at most 1,000 may match',
		displayOptions: { show: { ...showOnlyForCancelMany, cancelBy: ['filter'] } },
		options: [
			AGENT_TYPE_FILTER,
			CREATED_AFTER_FILTER,
			CREATED_BEFORE_FILTER,
			MODEL_FILTER,
			{
				displayName: 'Status',
				name: 'status',
				type: 'multiOptions',
				options: CANCELLABLE_STATUS_OPTIONS,
				default: [],
			},
			{
				displayName: 'Tags',
				name: 'tags',
				type: 'string',
				default: '',
				placeholder: 'batch:42',
				description: 'Comma-separated tags; only tasks that have every one of them are cancelled',
			},
		],
	},
];

function parseIds(value: unknown): string[] {
	const parts = Array.isArray(value) ? value : String(value ?? '').split(/[,\s]+/);
	return [...new Set(parts.map((part) => String(part ?? '').trim()).filter(Boolean))];
}

/** Cancels many tasks at once; outputs one item `{cancelled: [ids], skipped: [ids]}`. */
export async function execute(this: IExecuteFunctions, itemIndex: number): Promise<IDataObject> {
	const cancelBy = this.getNodeParameter('cancelBy', itemIndex, 'filter') as string;
	const body: IDataObject = {};
	if (cancelBy === 'taskIds') {
		const ids = parseIds(this.getNodeParameter('taskIds', itemIndex, ''));
		if (ids.length === 0) {
			throw new NodeOperationError(this.getNode(), 'Give at least one task ID', { itemIndex });
		}
		body.task_ids = ids;
	} else {
		const filters = this.getNodeParameter('cancelFilters', itemIndex, {}) as IDataObject;
		const filter: IDataObject = {};
		if (Array.isArray(filters.status) && filters.status.length > 0) filter.status = filters.status;
		if (filters.agentType) filter.agent_type = filters.agentType;
		if (filters.model) filter.model = filters.model;
		if (filters.createdAfter) filter.created_after = isoUtc(filters.createdAfter);
		if (filters.createdBefore) filter.created_before = isoUtc(filters.createdBefore);
		try {
			const tags = parseTags(filters.tags);
			if (tags.length > 0) filter.tag = tags;
		} catch (error) {
			throw new NodeOperationError(this.getNode(), (error as Error).message, { itemIndex });
		}
		if (Object.keys(filter).length === 0) {
			// An empty filter would cancel every open task: make that a deliberate choice.
			throw new NodeOperationError(this.getNode(), 'Add at least one filter (for example Tags or Status)', {
				itemIndex,
			});
		}
		body.filter = filter;
	}
	const { body: result } = await codeTetherRequest.call(this, 'POST', '/automation/tasks/cancel', {
		body,
		itemIndex,
	});
	return result;
}
