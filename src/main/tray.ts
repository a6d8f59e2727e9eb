/**
 * The tray entry of the desktop face: an icon that turns red while alerts fire (amber while some are only
 * pending), a tooltip and, on macOS, a title with the count, and a menu to bring the window back. Shown only
 * where a tray can be: always on macOS and Windows; on Linux only with a session D-Bus, where the
 * StatusNotifier a tray needs lives (without one Electron would create an icon nobody can see).
 *
 * The count comes from the ops store (`alerts.active()`), read at start, at every `alerts.changed` and at
 * every collection, so a console that is not the store's notifier shows what the notifier sees. Electron's
 * parts are handed in, so the stand-in electron module of the tests can drive it.
 */
import type { Menu as MenuType, NativeImage, Tray as TrayType } from 'electron'

export interface TrayParts {
  Tray: new (image: NativeImage) => TrayType
  Menu: { buildFromTemplate: (template: { label: string; enabled?: boolean; click?: () => void }[]) => MenuType }
  nativeImage: { createFromBitmap: (buffer: Buffer, o: { width: number; height: number }) => NativeImage }
}

export interface AlertCounts {
  firing: number
  pending: number
}

export function traySupported(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): boolean {
  return platform !== 'linux' || Boolean(env.DBUS_SESSION_BUS_ADDRESS)
}

const SIZE = 16
/** A filled disc of one colour (BGRA, as createFromBitmap takes it), transparent around it. */
function disc(parts: TrayParts, [r, g, b]: [number, number, number]): NativeImage {
  const buf = Buffer.alloc(SIZE * SIZE * 4)
  const c = (SIZE - 1) / 2
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      if ((x - c) ** 2 + (y - c) ** 2 > (SIZE / 2 - 1) ** 2) continue
      const i = (y * SIZE + x) * 4
      buf[i] = b
      buf[i + 1] = g
      buf[i + 2] = r
      buf[i + 3] = 255
    }
  return parts.nativeImage.createFromBitmap(buf, { width: SIZE, height: SIZE })
}

export function trayText(c: AlertCounts): string {
  const firing = c.firing ? `${c.firing} alert${c.firing === 1 ? '' : 's'} firing` : 'no alert firing'
  return `ExamForge Ops — ${firing}${c.pending ? `, ${c.pending} pending` : ''}`
}

/** Create the tray entry, or null where none can be shown; `update` sets the count, `destroy` removes it. */
export function createAlertTray(
  parts: TrayParts,
  o: { show: () => void; supported?: boolean; warn?: (m: string) => void },
): { update: (c: AlertCounts) => void; destroy: () => void; tray: TrayType } | null {
  if (!(o.supported ?? traySupported())) return null
  const icons = { ok: disc(parts, [138, 147, 157]), pending: disc(parts, [224, 163, 46]), firing: disc(parts, [214, 69, 69]) }
  let tray: TrayType
  try {
    tray = new parts.Tray(icons.ok)
  } catch (e) {
    o.warn?.(`no tray icon: ${(e as Error).message}`)
    return null
  }
  let last = ''
  const update = (c: AlertCounts) => {
    const text = trayText(c)
    if (text === last) return
    last = text
    tray.setImage(c.firing ? icons.firing : c.pending ? icons.pending : icons.ok)
    tray.setToolTip(text)
    tray.setTitle(c.firing ? String(c.firing) : '')
    tray.setContextMenu(
      parts.Menu.buildFromTemplate([
        { label: text, enabled: false },
        { label: 'Show ExamForge Ops', click: o.show },
      ]),
    )
  }
  tray.on('click', o.show)
  update({ firing: 0, pending: 0 })
  return { update, destroy: () => tray.destroy(), tray }
}
