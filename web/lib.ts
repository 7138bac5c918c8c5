// The library bundle (web/dist/gramhd.js): the API plus the <gramhd-viewer> element.
export {
  exportPNG, exportTurntableMP4, hasWebGPU, loadCheckpoint, mp4Unsupported, renderToCanvas, restoreDevice, seedLatents, turntableYaws,
  type FrameInfo, type FrameStage, type GramHDModel, type LoadOptions, type RenderOptions, type TurntableOptions,
} from './gramhd.ts';
export { GramHDViewer } from './viewer.ts';
