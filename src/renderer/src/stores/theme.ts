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

/** A CSS variable's current value (charts draw with these, so they follow the theme). */
export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim()
}
