import { readFile } from 'node:fs/promises'
import os from 'node:os'
import { systemInformation } from '../../deps/lazy'
import { Rates } from '../rates'
import { FIRST, type Collector, type Sample } from './collector'

/**
 * This host: CPU, load, memory and swap, disk space per mount (every 30 s: it changes slowly and is the
 * costliest read), disk and network byte rates from counter deltas. Through systeminformation, except
 * the counters it can only get on Linux by starting processes (read from /proc instead).
 */
export function hostCollector(): Collector {
  const rates = new Rates()
  let disks: { at: number; samples: Sample[] } = { at: 0, samples: [] }
  const linux = process.platform === 'linux'
  // CPU busy from os.cpus() counters between collections (systeminformation's currentLoad runs a process for the load average).
  let prevCpu: { busy: number; total: number } | null = null
  const cpuLoad = async () => {
    const t = os.cpus().reduce(
      (a, c) => {
        const total = c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq
        return { busy: a.busy + total - c.times.idle, total: a.total + total }
      },
      { busy: 0, total: 0 },
    )
    const p = prevCpu
    prevCpu = t
    return {
      currentLoad: p && t.total > p.total ? (100 * (t.busy - p.busy)) / (t.total - p.total) : (100 * t.busy) / t.total,
      avgLoad: os.loadavg()[0],
    }
  }
  return {
    id: 'host',
    configured: true,
    async collect(now) {
      const si = await systemInformation()
      // On Linux, systeminformation starts a shell (cat, lsblk, ip) for memory, disk and network counters on
      // every call: several processes a second at a 1 s interval. The same counters are read from /proc here.
      const [load, mem, fs, net] = await Promise.all([
        linux ? cpuLoad() : si.currentLoad(),
        linux ? procMem().catch(() => si.mem()) : si.mem(),
        linux ? procDisk().catch(() => null) : si.fsStats().catch(() => null),
        linux ? procNet().catch(() => []) : si.networkStats('*').catch(() => []),
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
          raw: value ?? null,
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

/** /proc/meminfo in kB, as systeminformation reports it (active = total - available). */
async function procMem(): Promise<{ total: number; active: number; swaptotal: number; swapused: number }> {
  const text = await readFile('/proc/meminfo', 'utf8')
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) * 1024
  const total = kb('MemTotal')
  const available = kb('MemAvailable') || kb('MemFree') + kb('Buffers') + kb('Cached')
  return { total, active: total - available, swaptotal: kb('SwapTotal'), swapused: kb('SwapTotal') - kb('SwapFree') }
}

/** Bytes read and written by whole disks since boot (/proc/diskstats sectors are 512 bytes). */
async function procDisk(): Promise<{ rx: number; wx: number }> {
  const text = await readFile('/proc/diskstats', 'utf8')
  let rx = 0
  let wx = 0
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f.length < 10) continue
    const name = f[2]
    // Whole devices only (partitions would count twice); no loop or ram devices.
    if (
      /^(loop|ram|zram|dm-|sr)/.test(name) ||
      /^(sd[a-z]+|hd[a-z]+|vd[a-z]+|xvd[a-z]+)\d+$/.test(name) ||
      /^(nvme\d+n\d+|mmcblk\d+)p\d+$/.test(name)
    )
      continue
    rx += Number(f[5]) * 512
    wx += Number(f[9]) * 512
  }
  return { rx, wx }
}

/** Bytes received and sent per interface since boot (/proc/net/dev). */
async function procNet(): Promise<{ iface: string; rx_bytes: number; tx_bytes: number }[]> {
  const text = await readFile('/proc/net/dev', 'utf8')
  return text
    .split('\n')
    .slice(2)
    .filter((l) => l.includes(':'))
    .map((l) => {
      const [iface, rest] = l.split(':')
      const f = rest.trim().split(/\s+/).map(Number)
      return { iface: iface.trim(), rx_bytes: f[0], tx_bytes: f[8] }
    })
}
