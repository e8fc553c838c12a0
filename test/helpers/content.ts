/**
 * Helpers for the content-aware cycle tests: the generated-clip decoder and pts-order replay live with
 * the clip generator (src/media/test-scenes.ts, shared with the `content` bench); re-exported here.
 */
export { decodeClip, replay, type DecodedClip, type ReplayTarget } from '../../src/media/test-scenes.js';
