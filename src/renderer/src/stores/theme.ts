/**
 * The colour theme: "system" (follows the operating system's light/dark preference, live), or a choice
 * the operator made with the toggle, kept in this browser's local storage. The resolved theme is set on
 * <html data-theme>, where the stylesheet's palettes hang; charts read their colours from the same
 * CSS variables.
 */
import { create } from 'zustand'

export type ThemeChoice = 'system' | 'light' | 'dark'
const KEY = 'examforge-ops.theme'

const media = () => (typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: light)') : null)
const stored = (): ThemeChoice => {
  try {
    const v = localStorage.getItem(KEY)
    return v === 'light' || v === 'dark' ? v : 'system'
  } catch {
    return 'system'
  }
}
const resolve = (choice: ThemeChoice): 'light' | 'dark' => (choice === 'system' ? (media()?.matches ? 'light' : 'dark') : choice)

interface ThemeState {
  choice: ThemeChoice
  resolved: 'light' | 'dark'
  /** System → light → dark → system. */
  cycle(): void
}

export const useTheme = create<ThemeState>((set, get) => {
  const apply = (choice: ThemeChoice) => {
    const resolved = resolve(choice)
    document.documentElement.dataset.theme = resolved
    set({ choice, resolved })
  }
  media()?.addEventListener('change', () => get().choice === 'system' && apply('system'))
  const choice = stored()
  const resolved = resolve(choice)
  if (typeof document !== 'undefined') document.documentElement.dataset.theme = resolved
  return {
    choice,
    resolved,
    cycle() {
      const next: ThemeChoice = { system: 'light', light: 'dark', dark: 'system' }[get().choice] as ThemeChoice
      try {
        if (next === 'system') localStorage.removeItem(KEY)
        else localStorage.setItem(KEY, next)
      } catch {
        /* private mode: the choice lasts for this page */
      }
      apply(next)
    },
  }
})

/** The palette charts draw with, read once per theme from the stylesheet's variables (never per render). */
export interface ChartColors {
  grid: string
  axis: string
  panel: string
  bad: string
  accent: string
}
const cache = new Map<string, ChartColors>()
export function chartColors(theme: 'light' | 'dark'): ChartColors {
  let c = cache.get(theme)
  if (!c) {
    const css = getComputedStyle(document.documentElement)
    const v = (name: string) => css.getPropertyValue(name).trim()
    c = { grid: v('--line'), axis: v('--muted'), panel: v('--panel'), bad: v('--bad'), accent: v('--accent') }
    cache.set(theme, c)
  }
  return c
}
