import { createHmac, timingSafeEqual } from 'crypto';

/** Deliveries older or newer than this (seconds) are refused as replays. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

export type HeaderBag = Record<string, string | string[] | undefined>;

export interface SignatureCheck {
	valid: boolean;
	/** Why a delivery was refused (safe to show: never contains the secret). */
	reason?: string;
}

function header(headers: HeaderBag, name: string): string | undefined {
	const value = headers[name.toLowerCase()];
	return Array.isArray(value) ? value[0] : value;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
	return a.length === b.length && timingSafeEqual(a, b);
}

function standardKey(secret: string): Buffer {
	return secret.startsWith('whsec_')
		? Buffer.from(secret.slice('whsec_'.length), 'base64')
		: Buffer.from(secret, 'utf8');
}

/**
 * Checks a CodeTether delivery against its subscription secret:
 * `X-CodeTether-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>` must match, the
 * timestamp must lie inside the tolerance window, and when the Standard Webhooks
 * `webhook-signature` is present (it always is from CodeTether) it must match too, which binds
 * the timestamp to the body so an old delivery cannot be replayed with a fresh timestamp.
 */
export function verifyDelivery(
	secret: string,
	headers: HeaderBag,
	rawBody: Buffer,
	nowSeconds: number,
	toleranceSeconds = SIGNATURE_TOLERANCE_SECONDS,
): SignatureCheck {
	if (!secret) return { valid: false, reason: 'no signing secret is stored for this trigger' };
	const signature = header(headers, 'x-codetether-signature');
	if (!signature) return { valid: false, reason: 'missing X-CodeTether-Signature' };
	const timestamp = header(headers, 'x-codetether-timestamp') ?? header(headers, 'webhook-timestamp');
	if (!timestamp || !/^\d+$/.test(timestamp)) {
		return { valid: false, reason: 'missing or malformed X-CodeTether-Timestamp' };
	}
	if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) {
		return { valid: false, reason: 'timestamp outside the allowed window' };
	}
	const expected = 'sha256=' + createHmac('sha256', secret).update(rawBody).digest('hex');
	if (!sameBytes(Buffer.from(signature), Buffer.from(expected))) {
		return { valid: false, reason: 'X-CodeTether-Signature does not match' };
	}
	const standard = header(headers, 'webhook-signature');
	if (standard !== undefined) {
		const id = header(headers, 'webhook-id') ?? '';
		const stamp = header(headers, 'webhook-timestamp') ?? timestamp;
		const mac = createHmac('sha256', standardKey(secret))
			.update(`${id}.${stamp}.`)
			.update(rawBody)
			.digest('base64');
		const wanted = Buffer.from(`v1,${mac}`);
		const matches = standard.split(' ').some((candidate) => sameBytes(Buffer.from(candidate), wanted));
		if (!matches) return { valid: false, reason: 'webhook-signature does not match' };
		if (stamp !== timestamp) return { valid: false, reason: 'timestamps disagree' };
	}
	return { valid: true };
}
