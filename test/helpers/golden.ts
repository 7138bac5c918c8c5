// Where the golden vectors live: test/golden once they are copied into the repository, until then
// the shared folder next to it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export const goldenDir = existsSync(join(repoRoot, 'test/golden'))
  ? join(repoRoot, 'test/golden')
  : join(repoRoot, '../shared/golden');
