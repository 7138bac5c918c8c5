// Real images are cut to their central square before resizing, as the reference's eval.py does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { centerCropSquare } from '../../cli/commands/eval.ts';

test('centerCropSquare keeps the central square with the reference offsets', () => {
  // 5 wide x 2 high, one channel: offset (5 - 2) // 2 = 1 -> columns 1 and 2
  const wide = { width: 5, height: 2, channels: 1, data: Uint8Array.from([0, 1, 2, 3, 4, 10, 11, 12, 13, 14]) };
  assert.equal([...centerCropSquare(wide).data], [1, 2, 11, 12]);
  // 2 wide x 4 high, RGB: offset (4 - 2) // 2 = 1 -> rows 1 and 2
  const tall = { width: 2, height: 4, channels: 3, data: Uint8Array.from({ length: 24 }, (_, i) => i) };
  const cut = centerCropSquare(tall);
  assert.is(cut.width, 2);
  assert.is(cut.height, 2);
  assert.equal([...cut.data], Array.from({ length: 12 }, (_, i) => 6 + i));
  const square = { width: 3, height: 3, channels: 1, data: new Uint8Array(9) };
  assert.is(centerCropSquare(square), square);
});

test.run();
