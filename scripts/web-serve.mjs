// npm run web [-- --port N]: builds web/dist and serves web/, ckpts/ and test/ on localhost.
// Run through tsx (package.json: node --import tsx scripts/web-serve.mjs).
import { buildWeb, serveWeb } from '../web/serve.ts';

const at = process.argv.indexOf('--port');
const port = at >= 0 ? Number(process.argv[at + 1]) : 8080;
const { bytes } = await buildWeb();
for (const [file, n] of Object.entries(bytes)) console.log(`built ${file} (${(n / 1024).toFixed(1)} KiB)`);
const { url } = await serveWeb({ port });
console.log(`demo: ${url}/web/index.html?ckpt=/ckpts/<file>.safetensors&seed=0`);
