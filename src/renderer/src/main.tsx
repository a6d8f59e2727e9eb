import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { ipcClient, wsClient } from './api/clients'
import { useApp } from './stores/app'
import { installBenchHook } from './stores/metrics'
import './styles.css'

// Electron exposes window.ops through the preload; a browser talks to the headless host.
const browser = window.ops ? null : wsClient((s) => useApp.getState().setConnection(s))
const api = browser ?? ipcClient(window.ops!)
if (browser) useApp.setState({ signOut: () => void browser.signOut() })
if (window.ops) useApp.getState().setConnection('open')
void useApp.getState().init(api)
installBenchHook()

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
