// Node side of the web demo (never bundled): builds web/*.ts into web/dist with esbuild and serves
// folders of the repository over HTTP on localhost with a small static server.
import { createReadStream, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** Bundles the demo (dist/demo.js) and the library (dist/gramhd.js, with the viewer element); the
 * code they share and mp4-muxer (loaded on the first MP4 export) go into chunks beside them. */
export async function buildWeb(options: { minify?: boolean } = {}): Promise<{ outdir: string; bytes: Record<string, number> }> {
  const esbuild = await import('esbuild');
  const outdir = join(repoRoot, 'web/dist');
  rmSync(outdir, { recursive: true, force: true }); // chunk names change with their content
  const result = await esbuild.build({
    entryPoints: { demo: join(repoRoot, 'web/demo.ts'), gramhd: join(repoRoot, 'web/lib.ts') },
    outdir,
    bundle: true,
    format: 'esm',
    splitting: true,
    chunkNames: 'chunk-[hash]',
    platform: 'browser',
    target: 'es2022',
    minify: options.minify ?? true,
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
  });
  const bytes: Record<string, number> = {};
  for (const [file, out] of Object.entries(result.metafile.outputs)) if (file.endsWith('.js')) bytes[file] = out.bytes;
  return { outdir, bytes };
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.css': 'text/css',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
};

export interface WebServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `mounts` (URL prefix such as '/web/' -> folder) on 127.0.0.1; '/' redirects to the demo.
 * Defaults: the repository's web/, ckpts/ and test/ folders. Port 0 picks a free one.
 */
export function serveWeb(options: { port?: number; mounts?: Record<string, string> } = {}): Promise<WebServer> {
  const mounts = options.mounts ?? {
    '/web/': join(repoRoot, 'web'),
    '/ckpts/': join(repoRoot, 'ckpts'),
    '/test/': join(repoRoot, 'test'),
  };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (path === '/' || path === '/index.html') {
      res.writeHead(302, { location: '/web/index.html' });
      res.end();
      return;
    }
    const prefix = Object.keys(mounts).find((p) => path.startsWith(p));
    if (!prefix || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    const root = resolve(mounts[prefix]);
    let file = resolve(root, '.' + sep + path.slice(prefix.length));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end();
      return;
    }
    let size: number;
    try {
      let st = statSync(file);
      if (st.isDirectory()) {
        file = join(file, 'index.html');
        st = statSync(file);
      }
      size = st.size;
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': String(size),
      'cache-control': 'no-store',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolveServer, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolveServer({
        server,
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}
