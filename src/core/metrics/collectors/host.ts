import si from 'systeminformation'
import { Rates } from '../rates'
import { FIRST, type Collector, type Sample } from './collector'

/**
 * This host through systeminformation: CPU, load, memory and swap, disk space per mount (every 30 s:
 * it changes slowly and is the costliest read), disk and network byte rates from counter deltas.
 */
export function hostCollector(): Collector {
  const rates = new Rates()
  let disks: { at: number; samples: Sample[] } = { at: 0, samples: [] }
  return {
    id: 'host',
    configured: true,
    async collect(now) {
      const [load, mem, fs, net] = await Promise.all([
        si.currentLoad(),
        si.mem(),
        si.fsStats().catch(() => null),
        si.networkStats('*').catch(() => []),
      ])
      if (now - disks.at >= 30_000) {
        const sizes = await si.fsSize().catch(() => [])
        disks = {
          at: now,
          samples: sizes
            .filter((d) => d.size > 0 && !/^(tmpfs|devtmpfs|overlay|squashfs)$/i.test(d.type) && !d.mount.startsWith('/snap'))
            .map((d) => ({ name: 'host.disk_used_percent', labels: { mount: d.mount }, v: d.use })),
        }
      }
      const rx = net.reduce((n, i) => n + (i.iface === 'lo' ? 0 : i.rx_bytes), 0)
      const tx = net.reduce((n, i) => n + (i.iface === 'lo' ? 0 : i.tx_bytes), 0)
      const rate = (key: string, value: number | null | undefined): Sample => {
        const v = rates.rate(key, value, now)
        return {
          name: key,
          v,
          ...(v === null ? { note: value === null || value === undefined ? 'not available on this system' : FIRST } : {}),
        }
      }
      return [
        { name: 'host.cpu_percent', v: round(load.currentLoad) },
        { name: 'host.load1', v: round(load.avgLoad) },
        { name: 'host.mem_percent', v: mem.total ? round((100 * mem.active) / mem.total) : null },
        { name: 'host.swap_percent', v: mem.swaptotal ? round((100 * mem.swapused) / mem.swaptotal) : 0 },
        ...disks.samples,
        rate('host.disk_read_bps', fs?.rx ?? null),
        rate('host.disk_write_bps', fs?.wx ?? null),
        rate('host.net_rx_bps', net.length ? rx : null),
        rate('host.net_tx_bps', net.length ? tx : null),
      ]
    },
    async close() {},
  }
}

export const round = (n: number | null | undefined, digits = 2): number | null =>
  n === null || n === undefined || !Number.isFinite(n) ? null : Math.round(n * 10 ** digits) / 10 ** digits
