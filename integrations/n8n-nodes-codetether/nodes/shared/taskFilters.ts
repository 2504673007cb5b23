import type { INodeProperties } from 'n8n-workflow';

// The filter fields that Task → Get Many and Task → Cancel Many share (each keeps its own Status
// options and Tags wording). Listed in the collections in alphabetical order, as n8n shows them.

export const AGENT_TYPE_FILTER: INodeProperties = {
	displayName: 'Agent Type',
	name: 'agentType',
	type: 'options',
	default: 'general',
	options: [
		{ name: 'Build', value: 'build' },
		{ name: 'Explore', value: 'explore' },
		{ name: 'General', value: 'general' },
		{ name: 'Plan', value: 'plan' },
	],
};

export const CREATED_AFTER_FILTER: INodeProperties = {
	displayName: 'Created After',
	name: 'createdAfter',
	type: 'dateTime',
	default: '',
};

export const CREATED_BEFORE_FILTER: INodeProperties = {
	displayName: 'Created Before',
	name: 'createdBefore',
	type: 'dateTime',
	default: '',
};

export const MODEL_FILTER: INodeProperties = {
	displayName: 'Model',
	name: 'model',
	type: 'string',
	default: '',
};
