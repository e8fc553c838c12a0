/**
 * Messages between TransformersBackend (main thread) and its worker thread. Plain structured-clone
 * data only: buffers are copied, never shared.
 */
import type { ChatTurn, SamplingOptions } from './backend.js';

export type DtypeOption = string | Record<string, string>;

export interface WorkerLoadOptions {
  /** A hub id (`onnx-community/gemma-3n-E2B-it-ONNX`) or an absolute local directory. */
  model: string;
  dtype: DtypeOption;
  device: string;
  cacheDir?: string;
  allowRemote: boolean;
  /** ORT intra-op threads per session; undefined lets ORT decide (all cores). */
  threads?: number;
}

export interface WireImage {
  width: number;
  height: number;
  rgb?: Uint8Array;
  jpeg?: Uint8Array;
}

export interface WireGenerate {
  id: number;
  system?: string;
  history: ChatTurn[];
  prompt: string;
  images: WireImage[];
  audio?: Float32Array;
  maxNewTokens: number;
  sampling?: SamplingOptions;
}

export type ToWorker =
  | { type: 'load'; options: WorkerLoadOptions }
  | { type: 'generate'; request: WireGenerate }
  | { type: 'abort'; id: number }
  | { type: 'dispose' };

export interface ProgressEvent {
  status: string;
  file?: string;
  progress?: number;
  loaded?: number;
  total?: number;
}

export type FromWorker =
  | { type: 'progress'; info: ProgressEvent }
  | { type: 'loaded'; imageSeqLength: number; audioSeqLength: number; sessions: string[] }
  | { type: 'load_error'; message: string }
  | { type: 'delta'; id: number; text: string }
  | {
      type: 'done';
      id: number;
      promptTokens: number;
      completionTokens: number;
      encodeMs: number;
      aborted: boolean;
    }
  | { type: 'error'; id: number; message: string }
  | { type: 'disposed' };
