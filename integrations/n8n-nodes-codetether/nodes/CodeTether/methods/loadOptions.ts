import type { IDataObject, ILoadOptionsFunctions, INodePropertyOptions } from 'n8n-workflow';

import { codeTetherRequest } from '../transport';

/** Models from `GET /automation/models`; unavailable ones are listed last and say so. */
export async function getModels(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const { body } = await codeTetherRequest.call(this, 'GET', '/automation/models');
	const models = (body.data ?? []) as IDataObject[];
	const options = models.map((model) => ({
		name: `${String(model.name ?? model.id)}${model.default ? ' (default)' : ''}${
			model.available === false ? ' — unavailable' : ''
		}`,
		value: String(model.id),
		description: String(model.description ?? model.provider ?? ''),
		available: model.available !== false,
	}));
	options.sort((a, b) => Number(b.available) - Number(a.available) || a.name.localeCompare(b.name));
	return options.map(({ name, value, description }) => ({ name, value, description }));
}

/** Codebases from `GET /automation/codebases` (needs the codebases:read scope). */
export async function getCodebases(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
	const { body } = await codeTetherRequest.call(this, 'GET', '/automation/codebases');
	const codebases = (body.data ?? []) as IDataObject[];
	return codebases
		.map((codebase) => ({
			name: String(codebase.name ?? codebase.codebase_id),
			value: String(codebase.codebase_id ?? codebase.id),
			description: String(codebase.repository_url ?? ''),
		}))
		.sort((a, b) => a.name.localeCompare(b.name));
}
