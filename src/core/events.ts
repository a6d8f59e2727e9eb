import { EventEmitter } from 'node:events'
import { eventNames, type EventName, type EventPayload } from '../shared/contract'

/** Typed events from core to whichever face is listening (IPC, WebSocket, CLI). */
export class OpsEvents {
  private ee = new EventEmitter()
  constructor() {
    this.ee.setMaxListeners(100)
  }
  emit<E extends EventName>(event: E, payload: EventPayload<E>): void {
    this.ee.emit(event, payload)
  }
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void {
    this.ee.on(event, listener)
    return () => this.ee.off(event, listener)
  }
  onAny(listener: (event: EventName, payload: unknown) => void): () => void {
    const offs = eventNames.map((e) => this.on(e, (p) => listener(e, p)))
    return () => offs.forEach((off) => off())
  }
}
