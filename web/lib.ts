// The library bundle (web/dist/gramhd.js): the API plus the <gramhd-viewer> element.
export { hasWebGPU, loadCheckpoint, renderToCanvas, seedLatents, type FrameInfo, type GramHDModel, type LoadOptions, type RenderOptions } from './gramhd.ts';
export { GramHDViewer } from './viewer.ts';
