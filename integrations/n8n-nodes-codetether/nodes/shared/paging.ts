/** Cursor paging over CodeTether lists (`{"data": [...], "next_cursor": ...}`). */

export interface Page<T> {
	data: T[];
	next_cursor?: string | null;
}

/** Largest page the API serves. */
export const MAX_PAGE_SIZE = 100;

/**
 * Follows `next_cursor` until the list ends or `limit` items are collected (no limit: all).
 * Each page asks for at most what is still missing, so a small limit costs one small request.
 */
export async function collectPages<T>(
	fetchPage: (pageSize: number, cursor: string | undefined) => Promise<Page<T>>,
	limit?: number,
): Promise<T[]> {
	const items: T[] = [];
	let cursor: string | undefined;
	const seen = new Set<string>();
	for (;;) {
		const missing = limit === undefined ? MAX_PAGE_SIZE : limit - items.length;
		if (missing <= 0) break;
		const page = await fetchPage(Math.min(missing, MAX_PAGE_SIZE), cursor);
		items.push(...(page.data ?? []));
		const next = page.next_cursor ?? undefined;
		// A cursor seen before would loop forever; the API never repeats one, but be safe.
		if (!next || seen.has(next) || (page.data ?? []).length === 0) break;
		seen.add(next);
		cursor = next;
	}
	return limit === undefined ? items : items.slice(0, limit);
}
