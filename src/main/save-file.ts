/**
 * The desktop face of app.saveFile: the system's save dialog (the operator chooses where; the renderer never
 * names a path), then the file written 0600 beside its destination and renamed over it, so a file is never
 * left half-written and an export is never readable by other users of the machine.
 */
import type { BrowserWindow, Dialog } from 'electron'
import { randomBytes } from 'node:crypto'
import { rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { SaveFile } from '../core/save-file'

export function dialogSaveFile(o: {
  dialog: Pick<Dialog, 'showSaveDialog'>
  window: () => BrowserWindow | null
  /** The folder the dialog opens in (the user's downloads folder). */
  folder: () => string
}): SaveFile {
  return async ({ fileName, data }) => {
    const ext = /\.([a-z0-9]{1,5})$/i.exec(fileName)?.[1]
    const options = {
      title: 'Save the export',
      defaultPath: join(o.folder(), fileName),
      properties: ['createDirectory', 'showOverwriteConfirmation'] as ('createDirectory' | 'showOverwriteConfirmation')[],
      ...(ext ? { filters: [{ name: ext.toUpperCase(), extensions: [ext] }] } : {}),
    }
    const win = o.window()
    const r = win ? await o.dialog.showSaveDialog(win, options) : await o.dialog.showSaveDialog(options)
    if (r.canceled || !r.filePath) return { saved: false, path: null }
    const partial = join(dirname(r.filePath), `.${fileName}.${randomBytes(4).toString('hex')}.partial`)
    try {
      await writeFile(partial, data, { mode: 0o600, flag: 'wx' })
      await rename(partial, r.filePath)
    } catch (e) {
      await rm(partial, { force: true })
      throw new Error(`Could not save ${r.filePath}: ${(e as Error).message}. Choose a folder you can write to.`)
    }
    return { saved: true, path: r.filePath }
  }
}
