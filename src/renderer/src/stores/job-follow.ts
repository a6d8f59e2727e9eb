/**
 * Following a job from a store: one subscription to its progress and outcome, and re-attaching to a
 * job that is still running after the page was reloaded (or the window reopened).
 *
 * The Backups, Restore and app stores all follow jobs the same way; each names the core job kinds it
 * shows (`backup.full` → 'backup', …) and what to do with progress and the outcome. The subscription is
 * made before the running jobs are listed, so a job that finishes in between is not missed.
 */
import type { ApiClient } from '../../../shared/contract'
import type { JobInfo, JobProgress } from '../../../shared/domain'

export interface FollowedJob<K extends string> {
  jobId: string
  kind: K
  /** When the job started (ms since the epoch), from the host's record: elapsed time survives a reload. */
  startedAt: number
}

export interface JobFollower<K extends string> {
  /** Subscribe once (idempotent). */
  subscribe(): void
  /** The running job of one of our kinds, if any, with its latest progress (after a reload). */
  reattach(): Promise<{ job: FollowedJob<K>; progress: JobProgress | null; input: JobInfo } | null>
}

export function jobFollower<K extends string>(o: {
  api: () => ApiClient
  /** Core job kind → the store's own name for it; kinds not listed are not ours. */
  kinds: Record<string, K>
  /** The job the store follows now. */
  current(): FollowedJob<K> | null
  onProgress(p: JobProgress): void
  onFinished(job: JobInfo, followed: FollowedJob<K>): void
}): JobFollower<K> {
  let subscribed = false
  // Jobs seen finishing: a job that ends between the list and the re-attach is not taken for running.
  const ended = new Set<string>()
  const subscribe = () => {
    if (subscribed) return
    subscribed = true
    o.api().on('job.progress', (p) => {
      if (p.jobId === o.current()?.jobId) o.onProgress(p)
    })
    o.api().on('job.finished', (j) => {
      ended.add(j.id)
      const followed = o.current()
      if (followed && j.id === followed.jobId) o.onFinished(j, followed)
    })
  }
  return {
    subscribe,
    async reattach() {
      subscribe()
      const jobs = await o.api().call('jobs.list', {})
      const running = jobs.find((j) => j.state === 'running' && !ended.has(j.id) && Object.prototype.hasOwnProperty.call(o.kinds, j.kind))
      if (!running) return null
      return {
        job: { jobId: running.id, kind: o.kinds[running.kind], startedAt: Date.parse(running.startedAt) },
        progress: running.progress,
        input: running,
      }
    },
  }
}
