// File helpers shared by the commands (Node only).
import { readFile, rename, rm, writeFile } from 'node:fs/promises';

/** The file's bytes; a failure becomes one line naming the file. */
export async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new Error(`${path}: cannot read (${systemMessage(error)})`);
  }
}

/**
 * Writes `bytes` to `<path>.tmp-<pid>` and renames it over `path`, so that a reader never sees a
 * half-written file and an interrupted run leaves the previous file intact.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new Error(`${path}: cannot write (${systemMessage(error)})`);
  }
}

function systemMessage(error: unknown): string {
  const { code, message } = error as NodeJS.ErrnoException;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return code ?? message;
}
