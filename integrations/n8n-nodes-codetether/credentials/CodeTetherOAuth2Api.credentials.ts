import type { Icon, ICredentialType, INodeProperties } from 'n8n-workflow';

const base = '{{$self["domain"].replace(/\\/+$/, "")}}';

/**
 * OAuth 2.0 credential: authorization code with PKCE against the service's own authorization
 * server (`/oauth/authorize`, `/oauth/token`). Register n8n's redirect URL as a client first.
 */
export class CodeTetherOAuth2Api implements ICredentialType {
	name = 'codeTetherOAuth2Api';

	extends = ['oAuth2Api'];

	displayName = 'CodeTether OAuth2 API';

	icon: Icon = { light: 'file:../icons/codetether.svg', dark: 'file:../icons/codetether.dark.svg' };

	documentationUrl = 'https://github.com/codetether/codetether/tree/main/integrations/n8n-nodes-codetether#oauth-2';

	properties: INodeProperties[] = [
		{
			displayName: 'API Domain',
			name: 'domain',
			type: 'string',
			required: true,
			default: 'https://api.codetether.io',
			description: 'The CodeTether base URL. Change it for a self-hosted instance.',
		},
		{
			displayName: 'Grant Type',
			name: 'grantType',
			type: 'hidden',
			default: 'pkce',
		},
		{
			displayName: 'Authorization URL',
			name: 'authUrl',
			type: 'hidden',
			default: `=${base}/oauth/authorize`,
		},
		{
			displayName: 'Access Token URL',
			name: 'accessTokenUrl',
			type: 'hidden',
			default: `=${base}/oauth/token`,
		},
		{
			displayName: 'Auth URI Query Parameters',
			name: 'authQueryParameters',
			type: 'hidden',
			default: '',
		},
		{
			displayName: 'Scope',
			name: 'scope',
			type: 'hidden',
			default: 'tasks:read tasks:write messages:write codebases:read webhooks:manage',
		},
		{
			displayName: 'Authentication',
			name: 'authentication',
			type: 'hidden',
			default: 'header',
		},
	];
}
