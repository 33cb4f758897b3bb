/**
 * The outcome of transcoding one video content, kept in the Cache under
 * `transcode:<sha256>` by the `video.transcode` worker and read by the preview routes.
 * Keyed by content, so every file with the same bytes shares one poster and preview.
 */
import type { Cache } from './ports/cache.js';

export interface TranscodeRecord {
  /** `skipped`: ffmpeg is not installed; `failed`: ffmpeg refused the input or timed out. */
  status: 'done' | 'skipped' | 'failed';
  /** The file whose upload asked for it (first one, for logs). */
  fileId: string;
  /** Blob of the poster JPEG, once done. */
  posterSha256?: string;
  /** Blob of the MP4 preview, once done. */
  previewSha256?: string;
  /** Why it was skipped or failed. */
  reason?: string;
  /** ISO-8601. */
  updatedAt: string;
}

export function transcodeKey(sha256: string): string {
  return `transcode:${sha256}`;
}

/** The recorded outcome for this content, or `null` when none (or unreadable). */
export async function readTranscode(cache: Cache, sha256: string): Promise<TranscodeRecord | null> {
  const raw = await cache.get(transcodeKey(sha256));
  if (raw === null) return null;
  try {
    const parsed = JSON.parse(raw) as Partial<TranscodeRecord>;
    return typeof parsed.status === 'string' ? (parsed as TranscodeRecord) : null;
  } catch {
    return null;
  }
}
