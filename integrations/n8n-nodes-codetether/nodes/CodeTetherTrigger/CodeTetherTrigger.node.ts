import type {
	IDataObject,
	IHookFunctions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
} from 'n8n-workflow';
import { NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import { codeTetherRequest } from '../CodeTether/transport';
import { EVENT_OPTIONS } from '../shared/events';
import { hasAllTags, parseTags } from '../shared/fields';
import { verifyDelivery } from '../shared/signature';

interface TriggerStaticData {
	webhookId?: string;
	webhookSecret?: string;
}

function sameEvents(a: unknown, b: string[]): boolean {
	if (!Array.isArray(a)) return false;
	const left = [...(a as string[])].sort();
	const right = [...b].sort();
	return left.length === right.length && left.every((value, index) => value === right[index]);
}

/**
 * Starts a workflow on CodeTether task events. Activating the workflow subscribes its webhook
 * URL through `POST /v1/webhooks` (the returned secret stays in the workflow's static data);
 * deactivating it unsubscribes. Every delivery is verified against that secret over the raw
 * body, with a timestamp window; anything unsigned, forged or stale gets 401 and no execution.
 */
export class CodeTetherTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'CodeTether Trigger',
		name: 'codeTetherTrigger',
		icon: { light: 'file:../../icons/codetether.svg', dark: 'file:../../icons/codetether.dark.svg' },
		group: ['trigger'],
		version: 1,
		subtitle: '={{$parameter["events"].join(", ")}}',
		description: 'Starts the workflow when a CodeTether task is created, progresses, asks or finishes',
		defaults: { name: 'CodeTether Trigger' },
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{
				name: 'codeTetherApi',
				required: true,
				displayOptions: { show: { authentication: ['apiKey'] } },
			},
			{
				name: 'codeTetherOAuth2Api',
				required: true,
				displayOptions: { show: { authentication: ['oAuth2'] } },
			},
		],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: 'webhook',
			},
		],
		properties: [
			{
				displayName: 'Authentication',
				name: 'authentication',
				type: 'options',
				options: [
					{ name: 'API Key', value: 'apiKey' },
					{ name: 'OAuth2', value: 'oAuth2' },
				],
				default: 'apiKey',
			},
			{
				displayName: 'Events',
				name: 'events',
				type: 'multiOptions',
				required: true,
				options: EVENT_OPTIONS,
				default: ['task.completed'],
				description: 'The task events that start this workflow',
			},
			{
				displayName: 'Only Tasks Tagged',
				name: 'tags',
				type: 'string',
				default: '',
				placeholder: 'feedback, batch:42',
				description:
					'Comma-separated tags: only events of tasks that have every one of them start the workflow (empty: every task)',
			},
		],
	};

	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node') as TriggerStaticData;
				if (!data.webhookId) return false;
				const { statusCode, body } = await codeTetherRequest.call(
					this,
					'GET',
					`/webhooks/${encodeURIComponent(data.webhookId)}`,
					{ allowStatuses: [404] },
				);
				const events = this.getNodeParameter('events', []) as string[];
				if (
					statusCode === 404 ||
					body.url !== this.getNodeWebhookUrl('default') ||
					body.status !== 'active' ||
					!sameEvents(body.events, events)
				) {
					// Gone, disabled or out of date: let create() subscribe afresh.
					if (statusCode !== 404) {
						await codeTetherRequest.call(this, 'DELETE', `/webhooks/${encodeURIComponent(data.webhookId)}`, {
							allowStatuses: [404],
						});
					}
					delete data.webhookId;
					delete data.webhookSecret;
					return false;
				}
				return true;
			},

			async create(this: IHookFunctions): Promise<boolean> {
				const url = this.getNodeWebhookUrl('default');
				const events = this.getNodeParameter('events', []) as string[];
				if (!url) throw new NodeOperationError(this.getNode(), 'n8n gave this trigger no webhook URL');
				if (events.length === 0) {
					throw new NodeOperationError(this.getNode(), 'Choose at least one event');
				}
				const { body } = await codeTetherRequest.call(this, 'POST', '/webhooks', {
					body: {
						url,
						events,
						description: `n8n workflow "${this.getWorkflow().name ?? this.getWorkflow().id}"`,
					},
				});
				if (!body.id || !body.secret) {
					throw new NodeOperationError(this.getNode(), 'CodeTether did not return a subscription id and secret');
				}
				const data = this.getWorkflowStaticData('node') as TriggerStaticData;
				data.webhookId = String(body.id);
				data.webhookSecret = String(body.secret);
				return true;
			},

			async delete(this: IHookFunctions): Promise<boolean> {
				const data = this.getWorkflowStaticData('node') as TriggerStaticData;
				if (data.webhookId) {
					// 404: already unsubscribed (e.g. deleted in the console), which is what we want.
					await codeTetherRequest.call(this, 'DELETE', `/webhooks/${encodeURIComponent(data.webhookId)}`, {
						allowStatuses: [404],
					});
				}
				delete data.webhookId;
				delete data.webhookSecret;
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const request = this.getRequestObject();
		const response = this.getResponseObject();
		const data = this.getWorkflowStaticData('node') as TriggerStaticData;
		const rawBody: Buffer = request.rawBody ?? Buffer.from(JSON.stringify(this.getBodyData()));
		const check = verifyDelivery(
			data.webhookSecret ?? '',
			this.getHeaderData() as Record<string, string | string[] | undefined>,
			rawBody,
			Math.floor(Date.now() / 1000),
		);
		if (!check.valid) {
			response.status(401).json({ error: 'invalid_signature', detail: check.reason });
			return { noWebhookResponse: true };
		}
		const event = this.getBodyData() as IDataObject;
		const events = this.getNodeParameter('events', []) as string[];
		if (typeof event.event !== 'string' || !events.includes(event.event)) {
			// A test ping, or an event this trigger no longer listens to: acknowledge, run nothing.
			response.status(200).json({ received: true, ignored: true });
			return { noWebhookResponse: true };
		}
		let tags: string[];
		try {
			tags = parseTags(this.getNodeParameter('tags', '') as string);
		} catch (error) {
			throw new NodeOperationError(this.getNode(), (error as Error).message);
		}
		if (!hasAllTags(event, tags)) {
			// Another task's event: acknowledge it (so it is not retried), run nothing.
			response.status(200).json({ received: true, ignored: true });
			return { noWebhookResponse: true };
		}
		return { workflowData: [this.helpers.returnJsonArray([event])] };
	}
}
