// H.264 MP4 files from RGBA frames, for the CLI's `render --type video` and the page's turntable
// export alike: any WebCodecs implementation (the browser's own; @napi-rs/webcodecs, a prebuilt
// FFmpeg, in Node) and mp4-muxer, loaded on first use so that PNG rendering never loads either.
// The encoders' chunks carry no duration, so each is muxed with addVideoChunkRaw and an explicit
// one-frame duration.

/** The H.264 profile every export asks for (Constrained Baseline, level 3.1). */
export const H264_CODEC = 'avc1.42001f';

export function h264Config(width: number, height: number, fps: number): VideoEncoderConfig {
  return {
    codec: H264_CODEC,
    width,
    height,
    framerate: fps,
    bitrate: Math.max(200_000, Math.round(width * height * fps * 0.4)),
    latencyMode: 'quality',
    avc: { format: 'avc' },
  };
}

/** The WebCodecs classes a writer encodes with: globalThis's in a browser, @napi-rs/webcodecs' in
 * Node (its classes follow the same interface). */
export interface WebCodecs {
  VideoEncoder: new (init: VideoEncoderInit) => VideoEncoder;
  VideoFrame: new (data: AllowSharedBufferSource, init: VideoFrameBufferInit) => VideoFrame;
}

/** Encodes frames one at a time (nothing but the encoded video is kept) into MP4 bytes. */
export class Mp4Writer {
  private failure: Error | null = null;
  private frames = 0;

  private constructor(
    private readonly codecs: WebCodecs,
    private readonly encoder: VideoEncoder,
    private readonly finalize: () => Uint8Array<ArrayBuffer>,
    readonly width: number,
    readonly height: number,
    private readonly frameMicros: number,
  ) {}

  /** A writer for frames of width x height (both even) at `fps`. */
  static async open(codecs: WebCodecs, width: number, height: number, fps = 30): Promise<Mp4Writer> {
    if (width % 2 || height % 2) throw new Error(`H.264 needs an even frame size, got ${width}x${height}`);
    const { Muxer, ArrayBufferTarget } = await import('mp4-muxer');
    const target = new ArrayBufferTarget();
    const muxer = new Muxer({ target, video: { codec: 'avc', width, height, frameRate: fps }, fastStart: 'in-memory' });
    const frameMicros = 1e6 / fps;
    let writer: Mp4Writer | null = null;
    const encoder = new codecs.VideoEncoder({
      output: (chunk, meta) => {
        const data = new Uint8Array(chunk.byteLength);
        chunk.copyTo(data);
        muxer.addVideoChunkRaw(data, chunk.type, chunk.timestamp, frameMicros, meta);
      },
      error: (error) => {
        if (writer) writer.failure ??= error;
      },
    });
    writer = new Mp4Writer(codecs, encoder, () => {
      muxer.finalize();
      return new Uint8Array(target.buffer);
    }, width, height, frameMicros);
    encoder.configure(h264Config(width, height, fps));
    return writer;
  }

  /** Queues one frame: width x height RGBA bytes, row by row. */
  add(rgba: Uint8Array): void {
    this.throwFailure();
    if (rgba.length !== this.width * this.height * 4) throw new Error(`an MP4 frame of ${this.width}x${this.height} needs ${this.width * this.height * 4} RGBA bytes, got ${rgba.length}`);
    const frame = new this.codecs.VideoFrame(rgba, {
      format: 'RGBA',
      codedWidth: this.width,
      codedHeight: this.height,
      timestamp: Math.round(this.frames * this.frameMicros),
      duration: Math.round(this.frameMicros),
    });
    try {
      this.encoder.encode(frame, { keyFrame: this.frames === 0 });
    } finally {
      frame.close();
    }
    this.frames++;
  }

  /** Encodes what is queued and returns the file; the writer is closed after. */
  async finish(): Promise<Uint8Array<ArrayBuffer>> {
    if (this.frames === 0) throw new Error('a video needs at least one frame');
    this.throwFailure();
    await this.encoder.flush();
    this.close();
    this.throwFailure();
    return this.finalize();
  }

  /** Releases the encoder (also after a failure; finish does it itself). */
  close(): void {
    if (this.encoder.state !== 'closed') this.encoder.close();
  }

  private throwFailure(): void {
    if (this.failure) throw new Error(`MP4 export: the H.264 encoder failed: ${this.failure.message}`);
  }
}
