// Thumbnail generation with sharp (libvips) and the choice of which configured size answers a
// request. Pure functions over bytes: the service decides what is stored and served.
import type { Metadata } from 'sharp';
import { MatrixError } from '../http/errors.js';

export type ThumbnailMethod = 'crop' | 'scale';

export interface ThumbnailSize {
  width: number;
  height: number;
  method: ThumbnailMethod;
}

/**
 * The only decoders we let near uploaded bytes (as Synapse restricts Pillow): every decoder
 * allowed is attack surface. SVG (librsvg, external references), TIFF, HEIF and RAW are refused.
 */
const DECODABLE_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif']);
const ANIMATABLE_FORMATS = new Set(['gif', 'webp', 'png']);

export interface ImageInfo {
  format: string;
  /** The size of one frame. */
  width: number;
  height: number;
  pages: number;
}

// sharp (libvips) costs ~25 MB resident once loaded: it is loaded at the first image, not at
// startup, so a server that never thumbnails never pays for it.
let sharpModule: Promise<typeof import('sharp')> | undefined;
const loadSharp = async () => (await (sharpModule ??= import('sharp'))).default;

const cannotThumbnail = () => new MatrixError('M_UNKNOWN', 'Cannot generate thumbnails for the requested content');

/**
 * Reads the image header only (no pixel decoding), refusing anything that is not an allowed
 * image format.
 */
export async function probeImage(bytes: Buffer): Promise<ImageInfo> {
  const sharp = await loadSharp();
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { animated: true, limitInputPixels: false }).metadata();
  } catch {
    throw cannotThumbnail();
  }
  if (!meta.format || !DECODABLE_FORMATS.has(meta.format) || !meta.width || !meta.height) throw cannotThumbnail();
  const pages = meta.pages ?? 1;
  let width = meta.width;
  let height = meta.pageHeight ?? meta.height;
  // EXIF orientations 5-8 turn the image a quarter: thumbnails are made after autoOrient().
  if (meta.orientation !== undefined && meta.orientation >= 5) [width, height] = [height, width];
  return { format: meta.format, width, height, pages };
}

/**
 * The decompression-bomb guard: a 100 KB PNG can claim 50000x50000 pixels. Every frame of an
 * animation is decoded, so the limit counts them all.
 */
export function checkPixelLimit(info: ImageInfo, maxPixels: number): void {
  if (info.width * info.height * info.pages > maxPixels) {
    throw new MatrixError('M_TOO_LARGE', 'Image is too large to thumbnail', { status: 413 });
  }
}

export const notThumbnailable = cannotThumbnail;

export function isAnimated(info: ImageInfo): boolean {
  return info.pages > 1 && ANIMATABLE_FORMATS.has(info.format);
}

/**
 * The dimensions a configured size produces for a source, never upscaling: "scale" fits the
 * image inside the box keeping its aspect; "crop" fills the box's aspect, then crops the middle.
 */
export function outputSize(src: { width: number; height: number }, size: ThumbnailSize): { width: number; height: number } {
  if (size.method === 'scale') {
    const f = Math.min(1, size.width / src.width, size.height / src.height);
    return { width: Math.max(1, Math.round(src.width * f)), height: Math.max(1, Math.round(src.height * f)) };
  }
  const f = Math.max(size.width / src.width, size.height / src.height);
  if (f <= 1) return { width: size.width, height: size.height };
  // The source is smaller than the box: the largest region of the box's aspect, at 1:1.
  const width = Math.max(1, Math.min(src.width, Math.round((src.height * size.width) / size.height)));
  const height = Math.max(1, Math.min(src.height, Math.round((src.width * size.height) / size.width)));
  return { width, height };
}

/**
 * Picks the configured size answering a request for (width, height, method): the smallest one
 * at least as large as asked, of the asked method; else one of the other method that is large
 * enough (a larger image beats the right aspect: clients must never get less than they asked
 * for when more exists); else the largest of the asked method.
 */
export function selectSize(
  sizes: ThumbnailSize[],
  src: { width: number; height: number },
  want: { width: number; height: number; method: ThumbnailMethod },
): ThumbnailSize | undefined {
  const area = (s: ThumbnailSize) => {
    const o = outputSize(src, s);
    return o.width * o.height;
  };
  // What the client will display: for scale, the source fitted inside the asked box.
  const needed =
    want.method === 'scale'
      ? outputSize(src, { ...want, method: 'scale' })
      : { width: Math.min(want.width, src.width), height: Math.min(want.height, src.height) };
  const bigEnough = (s: ThumbnailSize) => {
    const o = outputSize(src, s);
    return o.width >= needed.width && o.height >= needed.height;
  };
  const byArea = (a: ThumbnailSize, b: ThumbnailSize) => area(a) - area(b);
  const same = sizes.filter((s) => s.method === want.method);
  const other = sizes.filter((s) => s.method !== want.method);
  return (
    same.filter(bigEnough).sort(byArea)[0] ?? other.filter(bigEnough).sort(byArea)[0] ?? same.sort(byArea).at(-1) ?? sizes.slice().sort(byArea).at(-1)
  );
}

export interface Thumbnail {
  bytes: Buffer;
  contentType: string;
  width: number;
  height: number;
}

/**
 * Generates one thumbnail. Animated output (WebP, as the spec prefers) only when asked and the
 * source is animated; otherwise the first frame as JPEG for JPEG sources (photos) and PNG for
 * the rest (keeps transparency). EXIF orientation is applied, metadata is not copied.
 */
export async function generateThumbnail(bytes: Buffer, info: ImageInfo, size: ThumbnailSize, animated: boolean, maxPixels: number): Promise<Thumbnail> {
  const out = outputSize(info, size);
  const animate = animated && isAnimated(info);
  const sharp = await loadSharp();
  try {
    let img = sharp(bytes, { animated: animate, limitInputPixels: maxPixels, failOn: 'error' }).autoOrient();
    img = img.resize(out.width, out.height, { fit: size.method === 'crop' ? 'cover' : 'fill', position: 'centre', withoutEnlargement: true });
    let contentType: string;
    if (animate) {
      img = img.webp({ quality: 80, effort: 2 });
      contentType = 'image/webp';
    } else if (info.format === 'jpeg') {
      img = img.jpeg({ quality: 80, mozjpeg: false });
      contentType = 'image/jpeg';
    } else {
      img = img.png({ compressionLevel: 6 });
      contentType = 'image/png';
    }
    const { data, info: outInfo } = await img.toBuffer({ resolveWithObject: true });
    return { bytes: data, contentType, width: outInfo.width, height: outInfo.pageHeight ?? outInfo.height };
  } catch (err) {
    if (err instanceof MatrixError) throw err;
    // A truncated or malformed image: the client's problem, never a 500.
    throw cannotThumbnail();
  }
}
