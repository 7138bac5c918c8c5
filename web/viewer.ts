// <gramhd-viewer src="ckpt.safetensors" seed="0" truncation="0.7" yaw="0" pitch="0">: loads the
// checkpoint, renders the seed into its canvas (a child <canvas> if it has one, else its own) and
// re-renders as the user drags to orbit. Events: `load-progress` (detail {loaded, total}), `frame`
// (detail FrameInfo plus yaw, pitch), `render-error` (detail Error).
import { loadCheckpoint, renderToCanvas, type GramHDModel } from './gramhd.ts';

const YAW_LIMIT = Math.PI / 2;
const PITCH_LIMIT = Math.PI / 4;

function numberAttr(el: Element, name: string, fallback: number): number {
  const v = el.getAttribute(name);
  if (v === null || v.trim() === '') return fallback;
  const n = Number(v);
  return Number.isFinite(n) ? n : fallback;
}

export class GramHDViewer extends HTMLElement {
  static observedAttributes = ['src', 'seed', 'truncation', 'yaw', 'pitch'];

  canvas: HTMLCanvasElement;
  private model: GramHDModel | null = null;
  private loading: Promise<GramHDModel> | null = null;
  private loadedSrc: string | null = null;
  private yaw = 0;
  private pitch = 0;
  private rendering = false;
  private dirty = false;
  private drag: { id: number; x: number; y: number; yaw: number; pitch: number } | null = null;

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
      });
    }
    this.model = await this.loading!;
    return this.model;
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
          const info = await renderToCanvas(model, this.canvas, {
            seed: Math.trunc(numberAttr(this, 'seed', 0)),
            truncation: numberAttr(this, 'truncation', 0.7),
            yaw, pitch,
          });
          this.dispatchEvent(new CustomEvent('frame', { detail: { ...info, yaw, pitch } }));
        } while (this.dirty);
      } catch (error) {
        this.dispatchEvent(new CustomEvent('render-error', { detail: error }));
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
  }
}

if (typeof customElements !== 'undefined' && !customElements.get('gramhd-viewer')) {
  customElements.define('gramhd-viewer', GramHDViewer);
}
