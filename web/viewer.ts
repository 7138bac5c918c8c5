// <gramhd-viewer src="ckpt.safetensors" seed="0" truncation="0.7" yaw="0" pitch="0">: loads the
// checkpoint, renders the seed into its canvas (a child <canvas> if it has one, else its own) and
// re-renders when an attribute changes or the user drags to orbit. A new seed or truncation (or
// checkpoint) is baked once (model/orbit.ts, through renderToCanvas): GRAM-HD shows its low-res frame
// during the bake (unless progressive="false"), then the super-resolved one; every later pose,
// dragging included, renders from the bake (a drag before the bake exists shows low-res frames only).
// The `stats` attribute, or ?stats=1 in the page's URL, shows a debug overlay with the frame, view
// and bake times. Events: `load-progress` (detail {loaded, total}), `frame` (detail FrameInfo plus
// yaw, pitch; its `stage`, 'low-res' or 'final', is also the element's data-stage; bakeMs and viewMs
// are also data-bake-ms and data-view-ms), `render-error` (detail Error), `device-lost` (detail the
// reason; retry() recovers).
import {
  exportPNG, exportTurntableMP4, loadCheckpoint, renderToCanvas, restoreDevice, type FrameInfo, type GramHDModel, type TurntableOptions,
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
  private overlay: HTMLElement | null = null;
  private lastFinalAt: number | null = null;
  /** The last frame's times: its own (call to drawn), its view from the bake, and that bake's. */
  readonly stats: { frameMs: number | null; viewMs: number | null; bakeMs: number | null } = { frameMs: null, viewMs: null, bakeMs: null };

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
          const seed = this.seed;
          const truncation = numberAttr(this, 'truncation', 0.7);
          const baked = model.baked;
          await renderToCanvas(model, this.canvas, {
            seed, truncation, yaw, pitch,
            // dragging renders from the bake; before there is one, only low-res frames
            lowResOnly: this.drag !== null && !(baked && baked.seed === seed && baked.truncation === truncation),
            progressive: this.getAttribute('progressive') !== 'false',
            onFrame: (info) => {
              this.setAttribute('data-stage', info.stage);
              this.noteFrame(info);
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

  private statsShown(): boolean {
    return this.hasAttribute('stats') || new URLSearchParams(location.search).get('stats') === '1';
  }

  /** Keeps the frame's times (stats, data-*-ms) and updates the overlay when it is shown. */
  private noteFrame(info: FrameInfo): void {
    this.stats.frameMs = info.ms;
    if (info.bakeMs !== null) this.stats.bakeMs = info.bakeMs;
    if (info.viewMs !== null) this.stats.viewMs = info.viewMs;
    for (const [key, value] of [['frameMs', this.stats.frameMs], ['viewMs', this.stats.viewMs], ['bakeMs', this.stats.bakeMs]] as const) {
      if (value !== null) this.dataset[key] = value.toFixed(1);
    }
    if (!this.statsShown()) return;
    if (!this.overlay) {
      if (getComputedStyle(this).position === 'static') this.style.position = 'relative';
      if (getComputedStyle(this).display === 'inline') this.style.display = 'inline-block';
      this.overlay = document.createElement('div');
      this.overlay.className = 'gramhd-stats';
      Object.assign(this.overlay.style, {
        position: 'absolute', left: '4px', bottom: '4px', padding: '1px 5px', borderRadius: '3px', pointerEvents: 'none',
        font: '11px/1.4 ui-monospace, monospace', color: '#8f8', background: '#000b', whiteSpace: 'pre',
      });
      this.appendChild(this.overlay);
    }
    const now = performance.now();
    const ms = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} ms`);
    const interval = info.stage === 'final' && this.lastFinalAt !== null && !info.baked ? now - this.lastFinalAt : null;
    if (info.stage === 'final') this.lastFinalAt = now;
    this.overlay.textContent = `${info.stage} ${info.imageWidth}x${info.imageHeight}: frame ${ms(info.ms)}`
      + (interval !== null && interval < 1000 ? ` (${(1000 / interval).toFixed(1)} fps)` : '')
      + `\nview ${ms(this.stats.viewMs)}, bake ${ms(this.stats.bakeMs)}${info.baked ? ' (new)' : ''}`;
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
