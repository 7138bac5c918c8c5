// H.264 MP4 files from 8-bit RGB frames in Node: web/mp4.ts's writer on @napi-rs/webcodecs'
// VideoEncoder (a prebuilt FFmpeg). Imported lazily so that PNG rendering never loads the native
// module.
import type { Rgb8 } from '../train/image-io.ts';
import { Mp4Writer, type WebCodecs } from '../web/mp4.ts';

/** Encodes `frames` (equal sizes, even width and height) at `fps` into MP4 bytes. */
export async function encodeMp4(frames: readonly Rgb8[], fps = 30): Promise<Uint8Array> {
  if (frames.length === 0) throw new Error('a video needs at least one frame');
  const { width, height } = frames[0];
  const { VideoEncoder, VideoFrame } = await import('@napi-rs/webcodecs');
  // the native classes implement the WebCodecs interface; their declared types are their own
  const writer = await Mp4Writer.open({ VideoEncoder, VideoFrame } as unknown as WebCodecs, width, height, fps);
  try {
    const rgba = new Uint8Array(width * height * 4);
    for (const rgb of frames) {
      if (rgb.width !== width || rgb.height !== height) throw new Error('video frames must share one size');
      for (let p = 0; p < width * height; p++) {
        rgba[p * 4] = rgb.data[p * 3];
        rgba[p * 4 + 1] = rgb.data[p * 3 + 1];
        rgba[p * 4 + 2] = rgb.data[p * 3 + 2];
        rgba[p * 4 + 3] = 255;
      }
      writer.add(rgba);
    }
    return await writer.finish();
  } finally {
    writer.close();
  }
}
