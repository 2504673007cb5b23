import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

/** API key credential: `Authorization: Bearer ct_...` against the hosted service or any self-hosted one. */
export class CodeTetherApi implements ICredentialType {
	name = 'codeTetherApi';

	displayName = 'CodeTether API';

	icon: Icon = { light: 'file:../icons/codetether.svg', dark: 'file:../icons/codetether.dark.svg' };

	documentationUrl = 'https://github.com/codetether/codetether/tree/main/integrations/n8n-nodes-codetether#credentials';

	properties: INodeProperties[] = [
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			required: true,
			default: '',
			placeholder: 'ct_...',
			description: 'An API key created in the CodeTether console or with `codetether keys create`',
		},
		{
			displayName: 'API Domain',
			name: 'domain',
			type: 'string',
			required: true,
			default: 'https://api.codetether.io',
			description: 'The CodeTether base URL. Change it for a self-hosted instance, e.g. http://127.0.0.1:8000.',
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				Authorization: '=Bearer {{$credentials.apiKey}}',
			},
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.domain.replace(/\\/+$/, "")}}',
			url: '/v1/automation/me',
		},
	};
}
