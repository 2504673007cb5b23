// A small evaluator for the subset of Make's IML that this app uses, so the tests can render the
// exact requests Make would send. It is not Make's engine (which is not published); it follows
// Make's documented behaviour for what the app relies on:
//   - `{{expr}}` inside JSON strings; a string that is one whole `{{expr}}` keeps the value's type,
//     a mixed string is text;
//   - paths `a.b.c`, backtick keys `headers.\`x-token\``, indexes `a[1]` (1-based on arrays);
//   - literals: 'text', "text", numbers, true, false, null; the keywords `omit` (drops the key)
//     and `now`;
//   - operators `=` `==` `!=` `<` `<=` `>` `>=` `+` `-` `*` `/` `%`, `and` `or` `not` `!`, parentheses;
//   - functions: ifempty, if, min, max, ceil, floor, round, join, length, contains, lower, upper,
//     trim, toString, parseNumber, toCollection, addSeconds, get, first.

export const OMIT = Symbol('omit');

export class ImlError extends Error {}

// ---- tokens ---------------------------------------------------------------------------------

const PUNCT = ['==', '!=', '<=', '>=', '=', '<', '>', '+', '-', '*', '/', '%', '(', ')', '[', ']', ',', '.', '!'];

function tokenize(src) {
	const tokens = [];
	let i = 0;
	while (i < src.length) {
		const c = src[i];
		if (/\s/.test(c)) {
			i++;
			continue;
		}
		if (c === "'" || c === '"') {
			let j = i + 1;
			let text = '';
			while (j < src.length && src[j] !== c) {
				if (src[j] === '\\' && j + 1 < src.length) j++;
				text += src[j++];
			}
			if (j >= src.length) throw new ImlError(`unterminated string in {{${src}}}`);
			tokens.push({ t: 'str', v: text });
			i = j + 1;
			continue;
		}
		if (c === '`') {
			const j = src.indexOf('`', i + 1);
			if (j < 0) throw new ImlError(`unterminated backtick name in {{${src}}}`);
			tokens.push({ t: 'name', v: src.slice(i + 1, j) });
			i = j + 1;
			continue;
		}
		const num = /^\d+(\.\d+)?/.exec(src.slice(i));
		if (num) {
			tokens.push({ t: 'num', v: Number(num[0]) });
			i += num[0].length;
			continue;
		}
		const ident = /^[A-Za-z_$][\w$]*/.exec(src.slice(i));
		if (ident) {
			tokens.push({ t: 'id', v: ident[0] });
			i += ident[0].length;
			continue;
		}
		const p = PUNCT.find((op) => src.startsWith(op, i));
		if (!p) throw new ImlError(`unexpected ${JSON.stringify(c)} in {{${src}}}`);
		tokens.push({ t: 'op', v: p });
		i += p.length;
	}
	return tokens;
}

// ---- parser (to a small AST) -----------------------------------------------------------------

function parse(src) {
	const tokens = tokenize(src);
	let pos = 0;
	const peek = () => tokens[pos];
	const isOp = (v) => peek()?.t === 'op' && peek().v === v;
	const isWord = (v) => peek()?.t === 'id' && peek().v === v;
	const expect = (v) => {
		if (!isOp(v)) throw new ImlError(`expected ${v} in {{${src}}}`);
		pos++;
	};

	function or() {
		let left = and();
		while (isWord('or') || isOp('||')) {
			pos++;
			left = { k: 'or', a: left, b: and() };
		}
		return left;
	}
	function and() {
		let left = not();
		while (isWord('and') || isOp('&&')) {
			pos++;
			left = { k: 'and', a: left, b: not() };
		}
		return left;
	}
	function not() {
		if (isWord('not') || isOp('!')) {
			pos++;
			return { k: 'not', a: not() };
		}
		return compare();
	}
	function compare() {
		const left = additive();
		const op = peek();
		if (op?.t === 'op' && ['=', '==', '!=', '<', '<=', '>', '>='].includes(op.v)) {
			pos++;
			return { k: 'cmp', op: op.v === '==' ? '=' : op.v, a: left, b: additive() };
		}
		return left;
	}
	function additive() {
		let left = multiplicative();
		while (isOp('+') || isOp('-')) {
			const op = tokens[pos++].v;
			left = { k: 'arith', op, a: left, b: multiplicative() };
		}
		return left;
	}
	function multiplicative() {
		let left = unary();
		while (isOp('*') || isOp('/') || isOp('%')) {
			const op = tokens[pos++].v;
			left = { k: 'arith', op, a: left, b: unary() };
		}
		return left;
	}
	function unary() {
		if (isOp('-')) {
			pos++;
			return { k: 'arith', op: '-', a: { k: 'lit', v: 0 }, b: unary() };
		}
		return postfix();
	}
	function postfix() {
		let node = primary();
		for (;;) {
			if (isOp('.')) {
				pos++;
				const name = tokens[pos++];
				if (!name || (name.t !== 'id' && name.t !== 'name' && name.t !== 'num')) {
					throw new ImlError(`expected a name after . in {{${src}}}`);
				}
				node = { k: 'get', obj: node, key: { k: 'lit', v: String(name.v) } };
			} else if (isOp('[')) {
				pos++;
				const key = or();
				expect(']');
				node = { k: 'get', obj: node, key, indexed: true };
			} else {
				return node;
			}
		}
	}
	function primary() {
		const tok = tokens[pos++];
		if (!tok) throw new ImlError(`unexpected end of {{${src}}}`);
		if (tok.t === 'num' || tok.t === 'str') return { k: 'lit', v: tok.v };
		if (tok.t === 'name') return { k: 'var', name: tok.v };
		if (tok.t === 'op' && tok.v === '(') {
			const inner = or();
			expect(')');
			return inner;
		}
		if (tok.t === 'id') {
			if (isOp('(')) {
				pos++;
				const args = [];
				if (!isOp(')')) {
					args.push(or());
					while (isOp(',')) {
						pos++;
						args.push(or());
					}
				}
				expect(')');
				return { k: 'call', fn: tok.v, args };
			}
			if (tok.v === 'true') return { k: 'lit', v: true };
			if (tok.v === 'false') return { k: 'lit', v: false };
			if (tok.v === 'null') return { k: 'lit', v: null };
			if (tok.v === 'omit') return { k: 'lit', v: OMIT };
			if (tok.v === 'now') return { k: 'now' };
			return { k: 'var', name: tok.v };
		}
		throw new ImlError(`unexpected ${tok.v} in {{${src}}}`);
	}

	const ast = or();
	if (pos !== tokens.length) throw new ImlError(`unexpected ${tokens[pos].v} in {{${src}}}`);
	return ast;
}

// ---- values ---------------------------------------------------------------------------------

export function isEmpty(v) {
	if (v === undefined || v === null || v === '' || v === OMIT) return true;
	if (Array.isArray(v)) return v.length === 0;
	if (v instanceof Date) return false;
	if (typeof v === 'object') return Object.keys(v).length === 0;
	return false;
}

function truthy(v) {
	if (isEmpty(v)) return false;
	return v !== false && v !== 0 && v !== 'false';
}

export function toText(v) {
	if (v === undefined || v === null || v === OMIT) return '';
	if (v instanceof Date) return v.toISOString();
	if (typeof v === 'object') return JSON.stringify(v);
	return String(v);
}

function toNumber(v) {
	if (v instanceof Date) return v.getTime();
	if (typeof v === 'number') return v;
	if (v === null || v === undefined || v === '') return NaN;
	return Number(v);
}

function equal(a, b) {
	if (a instanceof Date || b instanceof Date) return toNumber(a) === toNumber(b);
	if (typeof a === 'object' || typeof b === 'object') return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
	if (typeof a === 'number' || typeof b === 'number') return toNumber(a) === toNumber(b);
	return toText(a) === toText(b);
}

const FUNCTIONS = {
	ifempty: (a, b) => (isEmpty(a) ? b : a),
	if: (cond, a, b) => (truthy(cond) ? a : b),
	min: (...xs) => Math.min(...xs.flat().map(toNumber)),
	max: (...xs) => Math.max(...xs.flat().map(toNumber)),
	ceil: (x) => Math.ceil(toNumber(x)),
	floor: (x) => Math.floor(toNumber(x)),
	round: (x) => Math.round(toNumber(x)),
	join: (arr, sep = ',') => (Array.isArray(arr) ? arr.map(toText).join(sep) : toText(arr)),
	length: (x) => (Array.isArray(x) || typeof x === 'string' ? x.length : isEmpty(x) ? 0 : Object.keys(x).length),
	contains: (hay, needle) => (Array.isArray(hay) ? hay.some((h) => equal(h, needle)) : toText(hay).includes(toText(needle))),
	lower: (s) => toText(s).toLowerCase(),
	upper: (s) => toText(s).toUpperCase(),
	trim: (s) => toText(s).trim(),
	toString: (s) => toText(s),
	parseNumber: (s) => toNumber(s),
	toCollection: (arr, keyName, valueName) => {
		if (!Array.isArray(arr)) return isEmpty(arr) ? {} : arr;
		return Object.fromEntries(arr.filter((i) => i && !isEmpty(i[keyName])).map((i) => [toText(i[keyName]), i[valueName] ?? null]));
	},
	addSeconds: (date, seconds) => new Date(new Date(date).getTime() + toNumber(seconds) * 1000),
	get: (obj, path) => toText(path).split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj),
	first: (arr) => (Array.isArray(arr) ? arr[0] : undefined),
};

/** Adds the app's custom IML functions (`{name: fn}`) beside the built-in ones. */
export function registerFunctions(functions) {
	Object.assign(FUNCTIONS, functions);
}

function lookup(obj, key, indexed) {
	if (obj === null || obj === undefined || obj === OMIT) return undefined;
	if (Array.isArray(obj) && indexed && typeof key === 'number') return obj[key - 1];
	if (typeof obj !== 'object') return undefined;
	return obj[key];
}

function run(node, ctx) {
	switch (node.k) {
		case 'lit':
			return node.v;
		case 'now':
			return ctx.now ? ctx.now() : new Date();
		case 'var':
			return ctx[node.name];
		case 'get':
			return lookup(run(node.obj, ctx), run(node.key, ctx), node.indexed);
		case 'not':
			return !truthy(run(node.a, ctx));
		case 'and':
			return truthy(run(node.a, ctx)) && truthy(run(node.b, ctx));
		case 'or':
			return truthy(run(node.a, ctx)) || truthy(run(node.b, ctx));
		case 'cmp': {
			const a = run(node.a, ctx);
			const b = run(node.b, ctx);
			if (node.op === '=') return equal(a, b);
			if (node.op === '!=') return !equal(a, b);
			const [x, y] = typeof a === 'string' && typeof b === 'string' ? [a, b] : [toNumber(a), toNumber(b)];
			return { '<': x < y, '<=': x <= y, '>': x > y, '>=': x >= y }[node.op];
		}
		case 'arith': {
			const a = run(node.a, ctx);
			const b = run(node.b, ctx);
			if (node.op === '+' && (typeof a === 'string' || typeof b === 'string')) return toText(a) + toText(b);
			const [x, y] = [toNumber(a), toNumber(b)];
			return { '+': x + y, '-': x - y, '*': x * y, '/': x / y, '%': x % y }[node.op];
		}
		case 'call': {
			const fn = FUNCTIONS[node.fn];
			if (!fn) throw new ImlError(`unknown IML function ${node.fn}()`);
			return fn(...node.args.map((a) => run(a, ctx)));
		}
		default:
			throw new ImlError(`bad node ${node.k}`);
	}
}

const cache = new Map();

/** Evaluates one expression (the text between `{{` and `}}`). */
export function evaluateExpression(src, ctx) {
	let ast = cache.get(src);
	if (!ast) {
		ast = parse(src);
		cache.set(src, ast);
	}
	return run(ast, ctx);
}

const WHOLE = /^\{\{([\s\S]*?)\}\}$/;
const PART = /\{\{([\s\S]*?)\}\}/g;

/** Renders one IML string: a whole `{{expr}}` keeps its type, a mixed string becomes text. */
export function renderString(s, ctx) {
	const whole = WHOLE.exec(s);
	if (whole && !whole[1].includes('}}')) return evaluateExpression(whole[1], ctx);
	return s.replace(PART, (_m, expr) => toText(evaluateExpression(expr, ctx)));
}

/** Renders an IML JSON value: every string is evaluated, keys and items that render `omit` go. */
export function render(value, ctx) {
	if (typeof value === 'string') return renderString(value, ctx);
	if (Array.isArray(value)) return value.map((v) => render(v, ctx)).filter((v) => v !== OMIT);
	if (value && typeof value === 'object') {
		const out = {};
		for (const [k, v] of Object.entries(value)) {
			const r = render(v, ctx);
			if (r !== OMIT) out[k] = r;
		}
		return out;
	}
	return value;
}

export { truthy };
