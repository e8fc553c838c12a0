/**
 * Worker thread that owns the Transformers.js Gemma 3n model. Everything CPU-heavy that Transformers.js
 * does in JavaScript runs here, off the server's event loop: parsing the 14+ MB tokenizer JSON,
 * tokenisation, the audio feature extractor (log-mel spectrogram in plain JS), image resize/rescale
 * (sharp + JS), the generation loop's logits processing over a 262 400-wide vocabulary, and
 * detokenisation. ONNX Runtime runs each session in its own native thread pool.
 *
 * Pinned behaviour of @huggingface/transformers 4.3.1 relied on here:
 * - an absolute directory path is not a valid hub id, so files are read from it directly;
 * - `Gemma3nProcessor` takes one audio clip per call (an array throws) and crashes below ~24 ms;
 *   the main thread pads to ≥ 1 s before sending;
 * - `apply_chat_template` + `processor(prompt, images, audio, {add_special_tokens:false})` (the prompt
 *   already carries <bos>);
 * - `InterruptableStoppingCriteria` stops `generate()` at the next step;
 * - no top-k/top-p warpers: the sampler keeps `top_k` candidates (all 262 400 when 0) and ignores
 *   top_p, so top_k is passed only when the caller sets it (else the model's generation_config, 64)
 *   and top_p runs as our own logits processor (sampling.ts).
 */
import { parentPort } from 'node:worker_threads';
import {
  env,
  AutoProcessor,
  Gemma3nForConditionalGeneration,
  InterruptableStoppingCriteria,
  RawImage,
  TextStreamer,
  type Processor,
  type PreTrainedModel,
  type Tensor,
} from '@huggingface/transformers';
import { generationSampling, nucleusProcessor } from './sampling.js';
import type { FromWorker, ToWorker, WireGenerate, WireImage, WorkerLoadOptions } from './transformers-protocol.js';

if (!parentPort) throw new Error('transformers-worker must run in a worker thread');
const port = parentPort;

let processor: Processor | undefined;
let model: PreTrainedModel | undefined;
const running = new Map<number, InterruptableStoppingCriteria>();

function send(msg: FromWorker): void {
  port.postMessage(msg);
}

async function load(o: WorkerLoadOptions): Promise<void> {
  env.allowRemoteModels = o.allowRemote;
  env.allowLocalModels = true;
  if (o.cacheDir) env.cacheDir = o.cacheDir;
  const progress_callback = (info: unknown) => {
    const p = info as { status?: string; file?: string; progress?: number; loaded?: number; total?: number };
    send({ type: 'progress', info: { status: String(p.status), file: p.file, progress: p.progress, loaded: p.loaded, total: p.total } });
  };
  const common = {
    local_files_only: !o.allowRemote,
    progress_callback,
    ...(o.cacheDir ? { cache_dir: o.cacheDir } : {}),
  };
  processor = await AutoProcessor.from_pretrained(o.model, common);
  model = await Gemma3nForConditionalGeneration.from_pretrained(o.model, {
    ...common,
    dtype: o.dtype as never,
    device: o.device as never,
    ...(o.threads ? { session_options: { intraOpNumThreads: o.threads } } : {}),
  });
  const p = processor as unknown as { image_seq_length: number; audio_seq_length: number };
  send({
    type: 'loaded',
    imageSeqLength: p.image_seq_length,
    audioSeqLength: p.audio_seq_length,
    sessions: Object.keys((model as unknown as { sessions: Record<string, unknown> }).sessions),
  });
}

async function toRawImage(img: WireImage): Promise<RawImage> {
  if (img.rgb) return new RawImage(new Uint8ClampedArray(img.rgb.buffer, img.rgb.byteOffset, img.rgb.byteLength), img.width, img.height, 3);
  if (img.jpeg) return (await RawImage.fromBlob(new Blob([img.jpeg], { type: 'image/jpeg' }))).rgb();
  throw new Error('image has neither rgb nor jpeg bytes');
}

async function generate(req: WireGenerate): Promise<void> {
  if (!processor || !model) throw new Error('model not loaded');
  const criteria = new InterruptableStoppingCriteria();
  running.set(req.id, criteria);
  try {
    const t0 = performance.now();
    const messages: Array<{ role: string; content: unknown }> = [];
    if (req.system) messages.push({ role: 'system', content: req.system });
    for (const turn of req.history) messages.push({ role: turn.role, content: turn.text });
    const content: Array<Record<string, string>> = [];
    for (let i = 0; i < req.images.length; i++) content.push({ type: 'image' });
    if (req.audio) content.push({ type: 'audio' });
    content.push({ type: 'text', text: req.prompt });
    messages.push({ role: 'user', content });
    const prompt = processor.apply_chat_template(messages as never, { add_generation_prompt: true }) as string;
    const images = await Promise.all(req.images.map(toRawImage));
    const call = processor as unknown as (
      text: string,
      images: RawImage[] | null,
      audio: Float32Array | null,
      options: Record<string, unknown>,
    ) => Promise<Record<string, Tensor>>;
    const inputs = await call(prompt, images.length > 0 ? images : null, req.audio ?? null, { add_special_tokens: false });
    const encodeMs = performance.now() - t0;
    const promptTokens = inputs.input_ids!.dims.at(-1)!;
    if (criteria.interrupted) {
      send({ type: 'done', id: req.id, promptTokens, completionTokens: 0, encodeMs, aborted: true });
      return;
    }

    const tokenizer = (processor as unknown as { tokenizer: ConstructorParameters<typeof TextStreamer>[0] }).tokenizer;
    const streamer = new TextStreamer(tokenizer, {
      skip_prompt: true,
      skip_special_tokens: true,
      callback_function: (text: string) => {
        if (text) send({ type: 'delta', id: req.id, text });
      },
    });
    const sampling = generationSampling(req.sampling);
    const modelTopK = (model as unknown as { generation_config?: { top_k?: unknown } }).generation_config?.top_k;
    // GenerationConfig's own default is 50 when the model's config names none
    const topK = sampling.top_k ?? (typeof modelTopK === 'number' ? modelTopK : 50);
    const nucleus = sampling.do_sample ? nucleusProcessor(req.sampling?.topP, topK) : undefined;
    const out = (await model.generate({
      ...inputs,
      max_new_tokens: req.maxNewTokens,
      ...sampling,
      ...(nucleus ? { logits_processor: [nucleus] } : {}),
      streamer,
      stopping_criteria: [criteria],
    } as never)) as Tensor;
    const generated = (out.slice as (...a: unknown[]) => Tensor)(null, [promptTokens, null]);
    // No text here: the reply is the streamed deltas, joined by the main thread (src/model/measure.ts).
    send({
      type: 'done',
      id: req.id,
      promptTokens,
      completionTokens: generated.dims.at(-1) ?? 0,
      encodeMs,
      aborted: criteria.interrupted,
    });
  } finally {
    running.delete(req.id);
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'load':
      load(msg.options).catch((err: unknown) => send({ type: 'load_error', message: err instanceof Error ? err.message : String(err) }));
      break;
    case 'generate':
      generate(msg.request).catch((err: unknown) =>
        send({ type: 'error', id: msg.request.id, message: err instanceof Error ? err.message : String(err) }),
      );
      break;
    case 'abort': {
      // generate() registers its criteria synchronously on receipt, so an unknown id has already finished
      running.get(msg.id)?.interrupt();
      break;
    }
    case 'dispose':
      Promise.resolve(model?.dispose())
        .catch(() => undefined)
        .finally(() => send({ type: 'disposed' }));
      break;
  }
});
