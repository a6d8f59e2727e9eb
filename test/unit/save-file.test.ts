import { describe, expect, it } from 'vitest'
import { safeFileName, saveFile } from '../../src/core/save-file'

describe('app.saveFile in core', () => {
  it('offers only a safe bare file name, whatever the caller sent', () => {
    expect(safeFileName('../../etc/passwd')).toBe('passwd')
    expect(safeFileName('C:\\Windows\\win.ini')).toBe('win.ini')
    expect(safeFileName('incident "redis" <down>?.md')).toBe('incident _redis_ _down__.md')
    expect(safeFileName('a\u0000b\nc.json')).toBe('a_b_c.json')
    expect(safeFileName('..')).toBe('export')
    expect(safeFileName('CON.txt')).toBe('_CON.txt')
    expect(safeFileName('x'.repeat(300)).length).toBe(200)
  })

  it('where the face has no save dialog (the host), answers that the browser downloads, saving nothing', async () => {
    const r = await saveFile(undefined, { fileName: 'incident.json', encoding: 'utf8', data: '{}' })
    expect(r).toMatchObject({ saved: false, path: null })
    expect(r.message).toMatch(/browser, which downloads incident\.json itself/)
  })

  it('hands the face the bytes and the safe name, and says where it saved', async () => {
    const asked: { fileName: string; data: Buffer }[] = []
    const r = await saveFile(async (req) => (asked.push(req), { saved: true, path: `/home/op/${req.fileName}` }), {
      fileName: '../r.pdf',
      encoding: 'base64',
      data: Buffer.from('%PDF-1.7').toString('base64'),
    })
    expect(asked[0].fileName).toBe('r.pdf')
    expect(asked[0].data.toString()).toBe('%PDF-1.7')
    expect(r).toEqual({ saved: true, path: '/home/op/r.pdf', message: 'Saved /home/op/r.pdf.' })
  })
})
