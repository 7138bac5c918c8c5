// <gramhd-viewer src="ckpt.safetensors" seed="0" truncation="0.7" yaw="0" pitch="0">: loads the
// checkpoint, renders the seed into its canvas (a child <canvas> if it has one, else its own) and
// re-renders when an attribute changes or the user drags to orbit. GRAM-HD shows its low-res frame
// first (unless progressive="false"), then the super-resolved one; while dragging, only low-res
// frames. Events: `load-progress` (detail {loaded, total}), `frame` (detail FrameInfo plus yaw,
// pitch; its `stage`, 'low-res' or 'final', is also the element's data-stage), `render-error`
// (detail Error), `device-lost` (detail the reason; retry() recovers).
import {
  exportPNG, exportTurntableMP4, loadCheckpoint, renderToCanvas, restoreDevice, type GramHDModel, type TurntableOptions,
} from './gramhd.ts';

const YAW_LIMIT = Math.PI / 2;
const PITCH_LIMIT = Math.PI / 4;

function numberAttr(el: Element, name: string, fallback: number): number {
  const v = el.getAttribute(name);
  if (v === null || v.trim() === '') return fallback;
  const n = Number(v);
  return Number.isFinite(n) ? n : fallback;
}

export class GramHDViewer extends HTMLElement {
  static observedAttributes = ['src', 'seed', 'truncation', 'yaw', 'pitch']; // progressive: read per render

  canvas: HTMLCanvasElement;
  private model: GramHDModel | null = null;
  private loading: Promise<GramHDModel> | null = null;
  private loadedSrc: string | null = null;
  private yaw = 0;
  private pitch = 0;
  private rendering = false;
  private dirty = false;
  private drag: { id: number; x: number; y: number; yaw: number; pitch: number } | null = null;
  private lostNotified = false;

  constructor() {
    super();
    this.canvas = this.listen(document.createElement('canvas'));
  }

  private listen(canvas: HTMLCanvasElement): HTMLCanvasElement {
    canvas.style.touchAction = 'none';
    canvas.style.cursor = 'grab';
    canvas.addEventListener('pointerdown', (e) => this.onDown(e));
    canvas.addEventListener('pointermove', (e) => this.onMove(e));
    canvas.addEventListener('pointerup', (e) => this.onUp(e));
    canvas.addEventListener('pointercancel', (e) => this.onUp(e));
    return canvas;
  }

  connectedCallback(): void {
    // children exist by now (not in the constructor of a parsed element): a child canvas is used
    const child = this.querySelector('canvas');
    if (child && child !== this.canvas) this.canvas = this.listen(child);
    if (!this.canvas.isConnected) this.appendChild(this.canvas);
    this.yaw = numberAttr(this, 'yaw', 0);
    this.pitch = numberAttr(this, 'pitch', 0);
    this.requestRender();
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (old === value || !this.isConnected) return;
    if (name === 'yaw') this.yaw = numberAttr(this, 'yaw', 0);
    if (name === 'pitch') this.pitch = numberAttr(this, 'pitch', 0);
    this.requestRender();
  }

  disconnectedCallback(): void {
    // the model stays cached on the element; a re-connect renders again without refetching
  }

  /** The seed attribute as an integer. */
  get seed(): number {
    return Math.trunc(numberAttr(this, 'seed', 0));
  }

  set seed(value: number) {
    this.setAttribute('seed', String(Math.trunc(value)));
  }

  /** The loaded checkpoint, once there is one. */
  get loadedModel(): GramHDModel | null {
    return this.model;
  }

  /** The frame on screen as a PNG. */
  exportPNG(): Promise<Blob> {
    return exportPNG(this.canvas);
  }

  /** A turntable of the current seed and pitch as an H.264 MP4 (see exportTurntableMP4). */
  async exportTurntableMP4(options: TurntableOptions = {}): Promise<Blob> {
    return exportTurntableMP4(await this.ensureModel(), {
      seed: this.seed, truncation: numberAttr(this, 'truncation', 0.7), pitch: this.pitch, ...options,
    });
  }

  /** After `device-lost`: a new GPU device, the model rebuilt on it, and the view rendered again. */
  async retry(): Promise<void> {
    const model = await this.ensureModel();
    await restoreDevice(model);
    this.lostNotified = false;
    this.requestRender();
  }

  private notifyLost(reason: string): void {
    if (this.lostNotified) return;
    this.lostNotified = true;
    this.dispatchEvent(new CustomEvent('device-lost', { detail: reason }));
  }

  /** The current orbit, radians from the front view. */
  get pose(): { yaw: number; pitch: number } {
    return { yaw: this.yaw, pitch: this.pitch };
  }

  private async ensureModel(): Promise<GramHDModel> {
    const src = this.getAttribute('src');
    if (!src) throw new Error('<gramhd-viewer>: no src attribute (a .safetensors checkpoint URL)');
    if (this.loadedSrc !== src) {
      this.model?.dispose();
      this.model = null;
      this.loadedSrc = src;
      this.loading = loadCheckpoint(src, {
        onProgress: (loaded, total) => this.dispatchEvent(new CustomEvent('load-progress', { detail: { loaded, total } })),
      }).then((model) => {
        model.addEventListener('device-lost', (e) => this.notifyLost((e as CustomEvent<string>).detail));
        return model;
      });
    }
    const model = await this.loading!;
    if (this.loadedSrc === src) this.model = model;
    return model;
  }

  /** Renders the current pose; calls while a render runs collapse into one more render. */
  requestRender(): void {
    if (!this.getAttribute('src')) return; // nothing to show until there is a checkpoint
    if (this.rendering) {
      this.dirty = true;
      return;
    }
    this.rendering = true;
    this.toggleAttribute('data-busy', true);
    void (async () => {
      try {
        do {
          this.dirty = false;
          const model = await this.ensureModel();
          const yaw = this.yaw;
          const pitch = this.pitch;
          await renderToCanvas(model, this.canvas, {
            seed: this.seed,
            truncation: numberAttr(this, 'truncation', 0.7),
            yaw, pitch,
            lowResOnly: this.drag !== null,
            progressive: this.getAttribute('progressive') !== 'false',
            onFrame: (info) => {
              this.setAttribute('data-stage', info.stage);
              this.dispatchEvent(new CustomEvent('frame', { detail: { ...info, yaw, pitch } }));
            },
          });
        } while (this.dirty);
      } catch (error) {
        if (this.model?.lost) this.notifyLost(this.model.lost);
        else this.dispatchEvent(new CustomEvent('render-error', { detail: error }));
      } finally {
        this.rendering = false;
        this.removeAttribute('data-busy');
      }
    })();
  }

  private onDown(e: PointerEvent): void {
    if (this.drag) return;
    this.canvas.setPointerCapture(e.pointerId);
    this.canvas.style.cursor = 'grabbing';
    this.drag = { id: e.pointerId, x: e.clientX, y: e.clientY, yaw: this.yaw, pitch: this.pitch };
  }

  private onMove(e: PointerEvent): void {
    if (!this.drag || e.pointerId !== this.drag.id) return;
    // a drag across the canvas's width turns the camera by a half turn
    const scale = Math.PI / 2 / Math.max(1, this.canvas.clientWidth || this.canvas.width);
    const clamp = (v: number, limit: number) => Math.min(limit, Math.max(-limit, v));
    this.yaw = clamp(this.drag.yaw - (e.clientX - this.drag.x) * scale, YAW_LIMIT);
    this.pitch = clamp(this.drag.pitch - (e.clientY - this.drag.y) * scale, PITCH_LIMIT);
    this.requestRender();
  }

  private onUp(e: PointerEvent): void {
    if (!this.drag || e.pointerId !== this.drag.id) return;
    this.drag = null;
    this.canvas.style.cursor = 'grab';
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    this.requestRender(); // the final frame of the pose the drag ended at
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('gramhd-viewer')) {
  customElements.define('gramhd-viewer', GramHDViewer);
}
