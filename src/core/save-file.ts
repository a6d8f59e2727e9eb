/**
 * app.saveFile: a file the console made (an incident export) saved where the operator chooses. The face that
 * can ask (the Electron shell: the system's save dialog, then a 0600 write) passes `OpsOptions.saveFile`; the
 * host cannot show a dialog on the operator's machine, so it answers that the browser downloads the file.
 * The name offered is made safe here, whatever the caller sent: no folders, no control or reserved characters.
 */
import type { MethodOutput } from '../shared/contract'

export interface SaveFileRequest {
  /** A bare file name, already made safe (`safeFileName`). */
  fileName: string
  data: Buffer
}

/** What the face did: saved to a path, or not (the dialog was cancelled). */
export type SaveFile = (req: SaveFileRequest) => Promise<{ saved: boolean; path: string | null }>

/** A name a file system takes on every platform: the last path part, reserved characters as "_", at most 200 characters. */
export function safeFileName(name: string): string {
  const base = name.split(/[/\\]/).pop() ?? ''
  const cleaned = base
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f<>:"|?*]/g, '_')
    .replace(/^[.\s]+|[.\s]+$/g, '')
    .slice(0, 200)
  // Windows' reserved device names, with or without an extension.
  const safe = /^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i.test(cleaned) ? `_${cleaned}` : cleaned
  return safe || 'export'
}

export async function saveFile(
  face: SaveFile | undefined,
  input: { fileName: string; encoding: 'utf8' | 'base64'; data: string },
): Promise<MethodOutput<'app.saveFile'>> {
  const fileName = safeFileName(input.fileName)
  if (!face)
    return {
      saved: false,
      path: null,
      message: `This console runs in a browser, which downloads ${fileName} itself (to its downloads folder); nothing was saved on the host.`,
    }
  const r = await face({ fileName, data: Buffer.from(input.data, input.encoding) })
  return r.saved && r.path
    ? { saved: true, path: r.path, message: `Saved ${r.path}.` }
    : { saved: false, path: null, message: 'Not saved: the save dialog was closed without choosing a file.' }
}
