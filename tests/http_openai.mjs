// qvl-http through the official `openai` npm client (tests/http_openai.sh).
// Usage: node http_openai.mjs BASE_URL KEY OUTDIR
// Prints "ok - ..." / "not ok - ..." lines (the driver numbers them) and
// writes the greedy texts and the test image (OUTDIR/image.png) to OUTDIR
// for comparison with `qvlctl run`.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import zlib from "node:zlib";

const require = createRequire(path.join(process.env.QVL_NODE_MODULES, "x.js"));
const OpenAI = require("openai").default ?? require("openai");
const [base, key, out] = process.argv.slice(2);

// A 64x48 RGB gradient as PNG (zlib from node: no image library needed).
function png(w, h) {
	const crcTable = Array.from({ length: 256 }, (_, n) => {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		return c >>> 0;
	});
	const crc = (b) => {
		let c = 0xffffffff;
		for (const x of b) c = crcTable[(c ^ x) & 255] ^ (c >>> 8);
		return (c ^ 0xffffffff) >>> 0;
	};
	const chunk = (type, data) => {
		const len = Buffer.alloc(4), tc = Buffer.concat([Buffer.from(type), data]), c = Buffer.alloc(4);
		len.writeUInt32BE(data.length);
		c.writeUInt32BE(crc(tc));
		return Buffer.concat([len, tc, c]);
	};
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(w, 0);
	ihdr.writeUInt32BE(h, 4);
	ihdr[8] = 8; ihdr[9] = 2; // 8-bit RGB
	const raw = Buffer.alloc(h * (1 + 3 * w));
	for (let y = 0; y < h; y++)
		for (let x = 0; x < w; x++) {
			const o = y * (1 + 3 * w) + 1 + 3 * x;
			raw[o] = (x * 4) & 255; raw[o + 1] = (y * 5) & 255; raw[o + 2] = ((x + y) * 2) & 255;
		}
	return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr),
		chunk("IDAT", zlib.deflateSync(raw)), chunk("IEND", Buffer.alloc(0))]);
}
const image = path.join(out, "image.png");
fs.writeFileSync(image, png(64, 48));
const client = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0, timeout: 30000 });
const SYSTEM = "You are terse.";
const PROMPT = "Name three colours.";
const N = 12;

function ok(cond, what, extra) {
	console.log(`${cond ? "ok" : "not ok"} - ${what}`);
	if (!cond && extra !== undefined) console.log(`# ${JSON.stringify(extra)}`);
}

const msgs = [
	{ role: "system", content: SYSTEM },
	{ role: "user", content: PROMPT },
];

// text chat, greedy
const r = await client.chat.completions.create({
	model: "qvl", messages: msgs, max_tokens: N, temperature: 0,
});
const text = r.choices[0].message.content;
ok(r.object === "chat.completion" && typeof text === "string" && text.length > 0,
	"text chat answers a completion with content", r);
ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= N &&
	r.usage.prompt_tokens > 0 &&
	r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens,
	"usage counts are consistent", r.usage);
fs.writeFileSync(path.join(out, "text.txt"), text);

// image chat, greedy (a data: URL)
const b64 = fs.readFileSync(image).toString("base64");
const ri = await client.chat.completions.create({
	model: "qvl", max_tokens: N, temperature: 0,
	messages: [{ role: "user", content: [
		{ type: "image_url", image_url: { url: `data:image/png;base64,${b64}` } },
		{ type: "text", text: "Describe the image." },
	] }],
});
ok(typeof ri.choices[0].message.content === "string" && ri.usage.prompt_tokens > 10,
	"image chat answers (the image's tokens are in the prompt)", ri.usage);
fs.writeFileSync(path.join(out, "image.txt"), ri.choices[0].message.content);

// streaming: the deltas add up to the non-streamed text; usage at the end
const st = await client.chat.completions.create({
	model: "qvl", messages: msgs, max_tokens: N, temperature: 0, stream: true,
	stream_options: { include_usage: true },
});
let acc = "", chunks = 0, usage = null, finish = null;
for await (const c of st) {
	chunks++;
	if (c.usage) usage = c.usage;
	if (c.choices.length) {
		acc += c.choices[0].delta.content ?? "";
		if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
	}
}
ok(acc === text, "streamed deltas equal the non-streamed text", { acc, text });
ok(chunks >= 2 && finish !== null && usage && usage.completion_tokens === r.usage.completion_tokens,
	"stream has chunks, a finish_reason and the usage chunk", { chunks, finish, usage });

// stop strings: stop at a piece of the greedy text
const cut = text.length > 4 ? text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2) : null;
if (cut && cut.trim().length) {
	const rs = await client.chat.completions.create({
		model: "qvl", messages: msgs, max_tokens: N, temperature: 0, stop: [cut],
	});
	const want = text.slice(0, text.indexOf(cut));
	ok(rs.choices[0].message.content === want && rs.choices[0].finish_reason === "stop",
		"a stop string ends the text before it", { got: rs.choices[0].message.content, want, cut });
} else {
	ok(true, "# SKIP the greedy text is too short for a stop string");
}

// logprobs on completions (raw prompt)
const rc = await client.completions.create({
	model: "qvl", prompt: PROMPT, max_tokens: 4, temperature: 0, logprobs: 0,
});
const lp = rc.choices[0].logprobs;
ok(lp && lp.tokens.length === rc.usage.completion_tokens &&
	lp.token_logprobs.every((x) => x <= 0) && lp.tokens.join("") === rc.choices[0].text,
	"completions with logprobs: one per token, tokens spell the text", rc.choices[0]);

// multi-turn
const rm = await client.chat.completions.create({
	model: "qvl", max_tokens: 4, temperature: 0, messages: [
		...msgs, { role: "assistant", content: text }, { role: "user", content: "Again." },
	],
});
ok(rm.usage.prompt_tokens > r.usage.prompt_tokens, "multi-turn: the earlier turns are in the prompt", rm.usage);

// a bad request: 400 with the field named
try {
	await client.chat.completions.create({ model: "qvl", messages: msgs, temperature: 7 });
	ok(false, "temperature 7 is refused");
} catch (e) {
	ok(e.status === 400 && /temperature/.test(e.message) && e.error?.param === "temperature",
		"temperature 7 is refused with 400 naming the field", { status: e.status, m: e.message });
}
try {
	await client.chat.completions.create({ model: "qvl", max_tokens: 2, messages: [
		{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }] },
	] });
	ok(false, "a remote image URL is refused");
} catch (e) {
	ok(e.status === 400 && /remote/.test(e.message), "a remote image URL is refused with 400",
		{ status: e.status, m: e.message });
}

// a bad key: 401
const bad = new OpenAI({ baseURL: base, apiKey: key + "x", maxRetries: 0, timeout: 10000 });
try {
	await bad.chat.completions.create({ model: "qvl", messages: msgs, max_tokens: 2 });
	ok(false, "a wrong API key is refused");
} catch (e) {
	ok(e.status === 401, "a wrong API key is refused with 401", { status: e.status });
}

// models
const ms = await client.models.list();
ok(ms.data.length === 1 && typeof ms.data[0].id === "string", "models lists the daemon's model", ms.data);

// frequency_penalty (greedy): the most repeated token of the plain answer
// repeats less; the text is saved for `qvlctl generate --frequency-penalty`
const REP = "Repeat after me: la la la la la la la la la la la la";
const FN = 24;
const tokens = (res) => res.choices[0].logprobs.content.map((t) => t.token);
const maxCount = (ts) => {
	const m = new Map();
	for (const t of ts) m.set(t, (m.get(t) ?? 0) + 1);
	let best = ["", 0];
	for (const [t, n] of m) if (n > best[1]) best = [t, n];
	return best;
};
const plain = await client.chat.completions.create({
	model: "qvl", max_tokens: FN, temperature: 0, logprobs: true, ignore_eos: true,
	messages: [{ role: "user", content: REP }],
});
const pen = await client.chat.completions.create({
	model: "qvl", max_tokens: FN, temperature: 0, logprobs: true, ignore_eos: true,
	frequency_penalty: 2, messages: [{ role: "user", content: REP }],
});
const [tok0, n0] = maxCount(tokens(plain));
const n1 = tokens(pen).filter((t) => t === tok0).length;
ok(pen.choices[0].message.content !== plain.choices[0].message.content && n0 >= 2 && n1 < n0,
	"frequency_penalty 2: the answer's most repeated token becomes rarer",
	{ tok0, n0, n1, plain: plain.choices[0].message.content, pen: pen.choices[0].message.content });
fs.writeFileSync(path.join(out, "freq.txt"), pen.choices[0].message.content);
try {
	await client.chat.completions.create({ model: "qvl", messages: msgs, frequency_penalty: 2.5 });
	ok(false, "frequency_penalty 2.5 is refused");
} catch (e) {
	ok(e.status === 400 && e.error?.param === "frequency_penalty",
		"frequency_penalty 2.5 is refused with 400 naming the field", { status: e.status, m: e.message });
}

// top_logprobs: K alternatives, sorted, <= 0; under greedy the chosen token
// is the first with the same logprob; streamed and whole answers agree
const K = 5;
const checkTop = (content) => content.length > 0 && content.every((t) =>
	t.top_logprobs.length === K &&
	t.top_logprobs.every((a, i) => a.logprob <= 0 && (i === 0 || a.logprob <= t.top_logprobs[i - 1].logprob) &&
		Array.isArray(a.bytes) && Buffer.from(a.bytes).length === a.bytes.length) &&
	t.top_logprobs[0].token === t.token && t.top_logprobs[0].logprob === t.logprob &&
	JSON.stringify(t.top_logprobs[0].bytes) === JSON.stringify(t.bytes));
const rt = await client.chat.completions.create({
	model: "qvl", messages: msgs, max_tokens: N, temperature: 0, logprobs: true, top_logprobs: K,
});
const ct = rt.choices[0].logprobs?.content ?? [];
ok(checkTop(ct) && ct.length === rt.usage.completion_tokens,
	"top_logprobs 5: five sorted alternatives per token, the greedy choice first", ct.slice(0, 2));
// bytes are exact: the tokens' bytes are the answer's bytes, though the
// whole answer came in one CQE (no per-token chunks to take texts from)
const allBytes = Buffer.from(ct.flatMap((t) => t.bytes)).toString("utf8");
ok(allBytes === rt.choices[0].message.content, "logprobs: the tokens' bytes spell the content",
	{ allBytes, content: rt.choices[0].message.content });
const sr = await client.chat.completions.create({
	model: "qvl", messages: msgs, max_tokens: N, temperature: 0, logprobs: true, top_logprobs: K,
	stream: true,
});
let sct = [];
for await (const c of sr)
	if (c.choices.length && c.choices[0].logprobs) sct = sct.concat(c.choices[0].logprobs.content);
ok(JSON.stringify(sct) === JSON.stringify(ct), "streamed top_logprobs equal the whole answer's",
	{ s: sct.length, w: ct.length });
const rct = await client.completions.create({
	model: "qvl", prompt: PROMPT, max_tokens: 4, temperature: 0, logprobs: 3,
});
const clp = rct.choices[0].logprobs;
ok(clp.top_logprobs.length === clp.tokens.length && clp.top_logprobs.every((d, i) =>
	Object.keys(d).length >= 1 && Object.keys(d).length <= 3 && d[clp.tokens[i]] === clp.token_logprobs[i]),
	"completions logprobs 3: a dict of alternatives per token, holding the chosen one", clp);
try {
	await client.chat.completions.create({ model: "qvl", messages: msgs, logprobs: true, top_logprobs: 21 });
	ok(false, "top_logprobs 21 is refused");
} catch (e) {
	ok(e.status === 400 && e.error?.param === "top_logprobs", "top_logprobs 21 is refused with 400", { status: e.status });
}

// an image keeps its place among the text parts: "text, image, text" is not
// "image, text, text"; the text is saved for `qvlctl run --raw` with the
// placeholder at the same place
const img = { type: "image_url", image_url: { url: `data:image/png;base64,${b64}` } };
const placed = async (content) => client.chat.completions.create({
	model: "qvl", max_tokens: N, temperature: 0, logprobs: true,
	messages: [{ role: "user", content }],
});
const mid = await placed([{ type: "text", text: "Look:" }, img, { type: "text", text: " What is this?" }]);
const first = await placed([img, { type: "text", text: "Look:" }, { type: "text", text: " What is this?" }]);
ok(JSON.stringify(mid.choices[0].logprobs) !== JSON.stringify(first.choices[0].logprobs) &&
	mid.usage.prompt_tokens > 10,
	"an image between two text parts gives another answer than the image first",
	{ mid: mid.choices[0].message.content, first: first.choices[0].message.content });
fs.writeFileSync(path.join(out, "imgpos.txt"), mid.choices[0].message.content);
