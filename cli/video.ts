// H.264 MP4 files from 8-bit RGB frames: @napi-rs/webcodecs' VideoEncoder (a prebuilt FFmpeg) and
// mp4-muxer. The encoder's chunks carry no duration, so each is muxed with addVideoChunkRaw and an
// explicit one-frame duration. Node only; imported lazily so that PNG rendering never loads the
// native module.
import type { Rgb8 } from '../train/image-io.ts';

/** Encodes `frames` (equal sizes, even width and height) at `fps` into MP4 bytes. */
export async function encodeMp4(frames: readonly Rgb8[], fps = 30): Promise<Uint8Array> {
  if (frames.length === 0) throw new Error('a video needs at least one frame');
  const { width, height } = frames[0];
  if (width % 2 || height % 2) throw new Error(`H.264 needs an even frame size, got ${width}x${height}`);
  const { VideoEncoder, VideoFrame } = await import('@napi-rs/webcodecs');
  const { Muxer, ArrayBufferTarget } = await import('mp4-muxer');
  const target = new ArrayBufferTarget();
  const muxer = new Muxer({ target, video: { codec: 'avc', width, height, frameRate: fps }, fastStart: 'in-memory' });
  const frameMicros = 1e6 / fps;
  let failure: Error | null = null;
  const encoder = new VideoEncoder({
    output: (chunk, meta) => {
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      muxer.addVideoChunkRaw(data, chunk.type, chunk.timestamp, frameMicros, meta as any);
    },
    error: (error) => { failure = error; },
  });
  encoder.configure({
    codec: 'avc1.42001f',
    width,
    height,
    framerate: fps,
    bitrate: Math.max(200_000, Math.round(width * height * fps * 0.4)),
    latencyMode: 'quality',
  });
  const rgba = new Uint8Array(width * height * 4);
  frames.forEach((rgb, i) => {
    if (rgb.width !== width || rgb.height !== height) throw new Error('video frames must share one size');
    for (let p = 0; p < width * height; p++) {
      rgba[p * 4] = rgb.data[p * 3];
      rgba[p * 4 + 1] = rgb.data[p * 3 + 1];
      rgba[p * 4 + 2] = rgb.data[p * 3 + 2];
      rgba[p * 4 + 3] = 255;
    }
    const frame = new VideoFrame(rgba, { format: 'RGBA', codedWidth: width, codedHeight: height, timestamp: Math.round(i * frameMicros), duration: Math.round(frameMicros) });
    encoder.encode(frame, { keyFrame: i === 0 });
    frame.close();
  });
  await encoder.flush();
  encoder.close();
  if (failure) throw new Error(`video encoder: ${(failure as Error).message}`);
  muxer.finalize();
  return new Uint8Array(target.buffer);
}
