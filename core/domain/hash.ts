/**
 * sha256 of a file: a small file in one read (a stream per file costs more than its
 * bytes), a big one streamed (memory stays flat whatever the size).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';

/** Files up to this size are read whole. */
const ONE_READ_BYTES = 1024 * 1024;

export async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const handle = await fs.open(file, 'r');
  try {
    const hash = createHash('sha256');
    let size = 0;
    if ((await handle.stat()).size <= ONE_READ_BYTES) {
      const bytes = await handle.readFile();
      hash.update(bytes);
      size = bytes.byteLength;
    } else {
      for await (const chunk of handle.createReadStream({ highWaterMark: 1024 * 1024, autoClose: false })) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
    }
    return { sha256: hash.digest('hex'), size };
  } finally {
    await handle.close();
  }
}
