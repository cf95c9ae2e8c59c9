// Crash-safe file writes: temp file, fsync, rename, fsync the directory.
import { promises as fs, constants } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";

export const TMP_MARKER = ".nodecert-tmp-";

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces `file` with `data` so that a reader sees either the old or the new content, never a mix. */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `${TMP_MARKER}${path.basename(file)}.${randomBytes(6).toString("hex")}`);
  const fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // the umask may have narrowed or (for 0644) cut the requested mode
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    // Errors from a file handle name no path ("ENOSPC: no space left on device, write"): say which file.
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(`cannot write ${file}: ${err.message}`), { code: err.code, cause: e });
  }
  await fh.close();
  try {
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

/** Points `link` at `target` atomically: there is never a moment without a link. */
export async function replaceSymlink(link: string, target: string): Promise<void> {
  const dir = path.dirname(link);
  const tmp = path.join(dir, `${TMP_MARKER}${path.basename(link)}.${randomBytes(6).toString("hex")}`);
  await fs.symlink(target, tmp);
  try {
    await fs.rename(tmp, link);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

/** Creates the directory (and parents) and sets its mode; idempotent. */
export async function ensureDir(dir: string, mode = 0o700): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode });
  await fs.chmod(dir, mode);
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch {
    return false;
  }
}
