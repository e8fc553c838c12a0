/**
 * Frame signatures: a 16×16 greyscale thumbnail of the picture's content rectangle and the distance
 * between two — identical pictures are at 0, black and white at 1, letterbox bars do not count, and a
 * small change moves the distance a little where a different picture moves it a lot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SIGNATURE_GRID, collapseDuplicates, frameSignature, signatureDistance } from '../../src/media/signature.js';

function picture(w: number, h: number, px: (x: number, y: number) => [number, number, number]): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set(px(x, y), (y * w + x) * 3);
  return b;
}

test('identical pictures are at distance 0, black and white at 1, and the distance is symmetric', () => {
  const black = frameSignature(picture(64, 48, () => [0, 0, 0]), 64, 48);
  const white = frameSignature(picture(64, 48, () => [255, 255, 255]), 64, 48);
  assert.equal(black.length, SIGNATURE_GRID * SIGNATURE_GRID);
  assert.equal(signatureDistance(black, frameSignature(picture(64, 48, () => [0, 0, 0]), 64, 48)), 0);
  assert.equal(signatureDistance(black, white), 1);
  const grad = frameSignature(picture(64, 48, (x) => [x * 4, x * 4, x * 4]), 64, 48);
  assert.equal(signatureDistance(grad, white), signatureDistance(white, grad));
});

test('a small moving object changes the signature a little, another picture a lot', () => {
  const w = 320;
  const h = 180;
  const bg = (x: number, y: number): [number, number, number] => [(x * 255) / w, (y * 255) / h, 128];
  const withBox = (bx: number) => picture(w, h, (x, y) => (x >= bx && x < bx + 20 && y >= 80 && y < 100 ? [255, 255, 255] : bg(x, y)));
  const a = frameSignature(withBox(40), w, h);
  const b = frameSignature(withBox(60), w, h);
  const other = frameSignature(picture(w, h, (x, y) => [255 - (x * 255) / w, 40, (y * 255) / h]), w, h);
  const small = signatureDistance(a, b);
  assert.ok(small > 0 && small < 0.02, `moved box: ${small}`);
  assert.ok(signatureDistance(a, other) > 0.15, `another picture: ${signatureDistance(a, other)}`);
});

test('letterbox bars are left out: the same picture padded differently has the same signature', () => {
  const pic = (x: number, y: number): [number, number, number] => [x % 256, y % 256, (x + y) % 256];
  const plain = frameSignature(picture(160, 90, pic), 160, 90);
  // The same 160×90 picture centred in a 160×160 black square.
  const boxed = picture(160, 160, (x, y) => (y >= 35 && y < 125 ? pic(x, y - 35) : [0, 0, 0]));
  const inside = frameSignature(boxed, 160, 160, { x: 0, y: 35, width: 160, height: 90 });
  assert.equal(signatureDistance(plain, inside), 0);
  assert.ok(signatureDistance(plain, frameSignature(boxed, 160, 160)) > 0.05, 'the whole square (bars included) differs');
});

test('collapseDuplicates keeps the newest frame of each run of near-duplicates, and slow drift starts a new run', () => {
  const f = (id: number, grey: number) => ({ id, signature: new Uint8Array(256).fill(grey) });
  // 10 → 12 → 14 drift by 2/255 each (≤ 0.02 from 10 until 16), then a jump to 100.
  const { frames, dropped } = collapseDuplicates([f(1, 10), f(2, 12), f(3, 14), f(4, 16), f(5, 100), f(6, 101)], 0.02);
  assert.deepEqual(frames.map((x) => x.id), [3, 4, 6]);
  assert.equal(dropped, 3);
  const noSig: Array<{ id: number; signature?: Uint8Array }> = [{ id: 1 }, { id: 2 }];
  assert.deepEqual(collapseDuplicates(noSig, 0.5).frames, noSig, 'frames without a signature cannot be judged: kept');
});
