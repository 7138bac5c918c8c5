// Asserts that a checkpoint reader fails with one CheckpointError line mentioning each pattern.
import * as assert from 'uvu/assert';
import { CheckpointError } from '../../engine/io/host-tensor.ts';

export function throwsCheckpointError(run: () => unknown, ...mentions: RegExp[]): void {
  try {
    run();
  } catch (error) {
    assert.instance(error, CheckpointError);
    const message = (error as Error).message;
    assert.not.match(message, '\n', 'one line');
    for (const mention of mentions) assert.match(message, mention);
    return;
  }
  assert.unreachable('expected a CheckpointError');
}
